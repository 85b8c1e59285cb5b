"""`python train.py ...` is `python -m optsweep.train ...`: a shim so the command works as typed."""

from optsweep.frozen_imports import frozen_imports

with frozen_imports():  # what a run loads, loaded without the garbage collector's passes
    from optsweep.script_exit import run_as_script
    from optsweep.train import main

if __name__ == "__main__":
    run_as_script(main)
