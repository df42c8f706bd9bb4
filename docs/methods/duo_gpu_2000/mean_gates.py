"""A Duo artifact whose gates are the mean of several learned artifacts' gates, binarized at the same fraction."""
import sys
from kvtool.artifacts import Artifact, load_artifact
from kvtool.runtime.duo import binarize
out, *paths = sys.argv[1:]
learned = [load_artifact(p) for p in paths]
gates = sum(a.tensors["head_map"] for a in learned) / len(learned)
first = learned[0]
Artifact.build("duo", first.params, first.fingerprint, {"head_map": gates, "retrieval": binarize(gates, first.params)},
               {**first.calibration, "mean_of": [a.calibration.get("seed") for a in learned]}).save(out)
print("wrote", out)
