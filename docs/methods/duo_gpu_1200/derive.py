"""Re-binarize a learned Duo artifact at other streaming fractions (docs/methods/duo.md's snippet)."""
import sys
from kvtool.artifacts import Artifact, load_artifact
from kvtool.runtime.duo import binarize
path = sys.argv[1]
learned = load_artifact(path)
gates = learned.tensors["head_map"]
for fraction in (0.25, 0.75):
    params = {**learned.params, "streaming_fraction": fraction}
    out = path.replace("50.safetensors", f"{round(fraction * 100)}.safetensors")
    Artifact.build("duo", params, learned.fingerprint, {"head_map": gates, "retrieval": binarize(gates, params)},
                   learned.calibration).save(out)
    print("wrote", out)
