"""A trial process ends as a script does (its threads joined, atexit's functions run, the exit
code an interpreter would give) and then at once, without the interpreter's teardown.

That teardown frees torch's, Lightning's and matplotlib's modules object by object: 0.5-0.7 s
of every `python train.py` here (bench/harness.py), and it writes nothing a run keeps. By then
checkpoints and result.json are closed and synced, the loggers have flushed and closed in their
finalize, and logging's and multiprocessing's own shutdowns are atexit functions. A forked trial
(sweep/preload.py) must end this way anyway: it may not return into the server that forked it.
"""

import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn


def exit_code(main: Callable[[], object]) -> int:
    """main() run as an interpreter runs a script: the exit code it would end with."""
    try:
        try:
            main()
        finally:  # what a script's own exit does: wait for its threads, run atexit's functions
            threading._shutdown()
            atexit._run_exitfuncs()
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # an interpreter ends by the signal itself: exit code -2
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr as the interpreter's exit does (a flush that fails makes the
    exit code 120) and end the process with `code`, tearing nothing down."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except Exception as err:  # never raised: a forked trial must not return into its server
            code = 120
            with contextlib.suppress(Exception):
                print(f"Exception ignored in: {stream!r}", file=sys.stderr)
                print(f"{type(err).__name__}: {err}", file=sys.stderr)
    os._exit(code)


def run_as_script(main: Callable[[], object]) -> None:
    """main() as the script of `python train.py`; ended by exit_now unless something needs the
    interpreter after it: `python -i`, a profiler (`python -m cProfile -o ...` writes its file
    then) or a debugger's trace."""
    if sys.flags.inspect or sys.getprofile() or sys.gettrace():
        main()
    else:
        exit_now(exit_code(main))
