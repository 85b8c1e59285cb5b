"""`python train.py ...` is `python -m optsweep.train ...`: a shim so the command works as typed."""

from optsweep.train import main

if __name__ == "__main__":
    main()
