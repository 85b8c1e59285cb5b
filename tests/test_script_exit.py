"""script_exit: `python train.py` ends as the interpreter would end the same script (exit code,
output, threads joined, atexit's functions run), only without tearing its modules down. Each
case runs as a real process both ways: the script's main() called plainly, and through
run_as_script."""

import os
import pstats
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Each case's main(), after this prelude: each process appends its events to the file argv[1].
PRELUDE = """
import atexit, os, sys, threading, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)

def event(name, write=os.write, fd=fd):
    write(fd, name.encode() + b"\\n")

atexit.register(event, "atexit")

class Teardown:  # freed only when the interpreter tears its modules down
    def __del__(self, event=event):
        event("teardown")

kept = Teardown()

def late():
    time.sleep(0.3)
    event("thread")
"""

CASES = {
    "returns": "def main():\n    print('out', end='')\n    threading.Thread(target=late).start()",
    "exits 2": "def main():\n    sys.exit(2)",
    "exits with a message": "def main():\n    sys.exit('refused: bad input')",
    "raises": "def main():\n    raise ValueError('broken')",
    "is interrupted": "def main():\n    raise KeyboardInterrupt",
    # Its stdout fails at the flush on exit: the interpreter's exit code is then 120.
    "loses its stdout": (
        "def main():\n    print('lost', end='')\n    os.dup2(os.open('/dev/full', os.O_WRONLY), 1)"
    ),
}
ENDINGS = {
    "plainly": "main()",
    "through run_as_script": "from optsweep.script_exit import run_as_script\nrun_as_script(main)",
}


def ended(case: str, ending: str, tmp_path: Path) -> tuple[int, str, str, list[str]]:
    """The exit code, stdout, stderr's last line and the logged events of one process."""
    log = tmp_path / f"{ending}.log"
    script = f"{PRELUDE}\n{CASES[case]}\n\n{ENDINGS[ending]}\n"
    # A terminal's foreground python: SIGINT at its default, so KeyboardInterrupt can end it.
    proc = subprocess.run(
        [sys.executable, "-c", script, str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # buffered stdout
    )
    last_error_line = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode, proc.stdout, last_error_line, log.read_text().splitlines()


@pytest.mark.parametrize("case", CASES)
def test_a_script_ends_as_the_interpreter_would_end_it_without_its_teardown(case, tmp_path):
    code, out, error, events = ended(case, "through run_as_script", tmp_path)
    plain_code, plain_out, plain_error, plain_events = ended(case, "plainly", tmp_path)
    assert (code, out, error) == (plain_code, plain_out, plain_error)
    # The interpreter's own exit frees `kept` in its teardown; run_as_script skips it.
    assert plain_events[-1] == "teardown"
    assert events == plain_events[:-1]
    expected = {
        "returns": (0, "out", ["thread", "atexit"]),
        "exits 2": (2, "", ["atexit"]),
        "exits with a message": (1, "", ["atexit"]),
        "raises": (1, "", ["atexit"]),
        "is interrupted": (-signal.SIGINT, "", ["atexit"]),
        "loses its stdout": (120, "", ["atexit"]),
    }[case]
    assert (code, out, events) == expected
    assert error == {
        "exits with a message": "refused: bad input",
        "raises": "ValueError: broken",
        "is interrupted": "KeyboardInterrupt",
        "loses its stdout": "OSError: [Errno 28] No space left on device",
    }.get(case, error)


def test_a_profiler_still_gets_the_interpreter_after_the_script(tmp_path):
    script, log, profile = tmp_path / "script.py", tmp_path / "events.log", tmp_path / "run.prof"
    script.write_text(f"{PRELUDE}\n{CASES['returns']}\n\n{ENDINGS['through run_as_script']}\n")
    command = [sys.executable, "-m", "cProfile", "-o", str(profile), str(script), str(log)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    assert "main" in {name for _, _, name in pstats.Stats(str(profile)).stats}
    assert log.read_text().splitlines() == ["thread", "atexit", "teardown"]
