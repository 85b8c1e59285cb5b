"""`python train.py` and every trial process end as the interpreter ends a script (its error
reported, its threads joined, atexit's functions run, its streams flushed, the same exit code)
and then at once, without the interpreter's teardown.

That teardown frees torch's, Lightning's and matplotlib's modules object by object: 0.5-0.7 s
of every `python train.py` here (bench/harness.py), and it writes nothing a run keeps. By then
checkpoints and result.json are closed and synced, the loggers have flushed and closed in their
finalize, and logging's, multiprocessing's and MLflow's shutdowns are atexit functions. A forked
trial (sweep/preload.py) must end this way anyway: it may not return into the server that
forked it.
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

INTERRUPTED = -signal.SIGINT  # exit_code's code for a KeyboardInterrupt: ended by the signal


def exit_code(main: Callable[[], object]) -> int:
    """main() run as the interpreter runs a script, up to its teardown; the exit code it would
    end with (0 to 255), or INTERRUPTED."""
    code = 0
    try:
        main()
    except SystemExit as err:
        if err.code is None or isinstance(err.code, int):
            code = (err.code or 0) & 0xFF  # what exit() gives a parent of any int
        else:  # sys.exit("message"): the message, and exit code 1
            code = 1
            if sys.stderr:
                print(err.code, file=sys.stderr)
    except BaseException as err:
        sys.excepthook(type(err), err, err.__traceback__)
        code = INTERRUPTED if isinstance(err, KeyboardInterrupt) else 1
    try:
        threading._shutdown()  # wait for its threads, as the interpreter's exit does
    except BaseException as err:  # a second Ctrl-C while waiting, say: atexit's functions still run
        if sys.stderr:
            print(f"Exception ignored in: {threading!r}", file=sys.stderr)
            traceback.print_exception(err)
    atexit._run_exitfuncs()
    return code


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr as the interpreter's exit does (a flush that fails makes the
    exit code 120) and end the process with exit_code's `code`, tearing nothing down. Never
    raises."""
    interrupted = code == INTERRUPTED
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except BaseException as err:
            code = 120
            if sys.stderr and stream is not sys.stderr:
                with contextlib.suppress(BaseException):
                    print(f"Exception ignored in: {stream!r}", file=sys.stderr)
                    print(f"{type(err).__name__}: {err}", file=sys.stderr)
    if interrupted:  # as the interpreter ends on a KeyboardInterrupt: by the signal itself
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 128 + signal.SIGINT  # still here: the signal is blocked
    os._exit(code)


def run_as_script(main: Callable[[], object]) -> None:
    """main() as the script of the interpreter: ended by exit_now, unless something ran the
    script that wants the interpreter back after it (a profiler, a debugger, a coverage tool:
    any caller but `python -m`'s runpy) or `python -i` does."""
    caller = sys._getframe(1).f_back
    while caller is not None and caller.f_globals.get("__name__") == "runpy":
        caller = caller.f_back
    if caller is not None or sys.flags.inspect or os.environ.get("PYTHONINSPECT"):
        main()
    else:
        exit_now(exit_code(main))
