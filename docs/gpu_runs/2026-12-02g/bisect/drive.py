"""Device-only: python3 drive.py VARIANT [LAUNCH]: bench check of qaq4, kvquant3 at 2x5000 with decode.py replaced
by .g4/v/VARIANT.py (run from the repository root, on the device's copy of the tree)."""
import shutil, sys
shutil.copy(f".g4/v/{sys.argv[1]}.py", "kvtool/runtime/kernels/decode.py")
from kvtool import bench
with bench.using_launch(sys.argv[2] if len(sys.argv) > 2 else "auto"):
    print(sys.argv[1:], bench.check_against_reference(["qaq4", "kvquant3"], shapes=((2, 5000),)), flush=True)
