"""`python tests/cli_server.py FD`: the server the tests' `python train.py` runs are forked from
(helpers.run_cli), so that each starts in a fraction of a second instead of importing torch,
Lightning and Hydra for 5 s. It is the local launcher's trial server (optsweep.sweep.preload)
in a process of its own: it imports optsweep.train and the tests' callbacks, touches no CUDA,
and forks a child per run that sets its cwd, environment and argv and runs train.py's main.
FD is its end of the pipe to the test process."""

import os
import sys
from multiprocessing.connection import Connection

from optsweep.frozen_imports import frozen_imports

with frozen_imports():  # as the launcher's own process loads them (the root train.py)
    import killer  # noqa: F401  (the callbacks the tests' runs name: imported once, here)
    from optsweep.sweep.preload import serve

if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), os.getppid())
