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

# case: (main's body; the exit code, stdout, stderr's last line and events of both endings)
CASES = {
    "returns": (
        "print('out', end='')\n    threading.Thread(target=late).start()",
        (0, "out", "", ["thread", "atexit"]),
    ),
    "exits 2": ("sys.exit(2)", (2, "", "", ["atexit"])),
    "exits with a code past 255": ("sys.exit(2**32 + 2)", (2, "", "", ["atexit"])),
    # -2 is not a KeyboardInterrupt's end.
    "exits -2": ("sys.exit(-2)", (254, "", "", ["atexit"])),
    "exits with a message": (
        "sys.exit('refused: bad input')",
        (1, "", "refused: bad input", ["atexit"]),
    ),
    "raises": ("raise ValueError('broken')", (1, "", "ValueError: broken", ["atexit"])),
    # Its buffered output is flushed before the process ends by the signal.
    "is interrupted": (
        "print('out', end='')\n    raise KeyboardInterrupt",
        (-signal.SIGINT, "out", "KeyboardInterrupt", ["atexit"]),
    ),
    # Its stdout fails at the flush on exit: the interpreter's exit code is then 120.
    "loses its stdout": (
        "print('lost', end='')\n    os.dup2(os.open('/dev/full', os.O_WRONLY), 1)",
        (120, "", "OSError: [Errno 28] No space left on device", ["atexit"]),
    ),
}
ENDINGS = {
    "plainly": "main()",
    "through run_as_script": "from optsweep.script_exit import run_as_script\nrun_as_script(main)",
}
# Out of the environment: unbuffered output, a coverage tool or `python -i` it would start.
UNSET = ("PYTHONUNBUFFERED", "PYTHONINSPECT", "COVERAGE_PROCESS_START")


def script(case: str, ending: str) -> str:
    return f"{PRELUDE}\ndef main():\n    {CASES[case][0]}\n\n{ENDINGS[ending]}\n"


def run(command: list[str], log: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # A terminal's foreground python: SIGINT at its default, so KeyboardInterrupt can end it.
    return subprocess.run(
        [*command, str(log)],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={k: v for k, v in os.environ.items() if k not in UNSET and "COV_CORE" not in k},
    )


def ended(case: str, ending: str, tmp_path: Path) -> tuple[int, str, str, list[str]]:
    """The exit code, stdout, stderr's last line and the logged events of one process."""
    log = tmp_path / f"{ending}.log"
    proc = run([sys.executable, "-c", script(case, ending)], log)
    last_error_line = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode, proc.stdout, last_error_line, log.read_text().splitlines()


@pytest.mark.parametrize("case", CASES)
def test_a_script_ends_as_the_interpreter_would_end_it_without_its_teardown(case, tmp_path):
    code, out, error, events = ended(case, "through run_as_script", tmp_path)
    plain_code, plain_out, plain_error, plain_events = ended(case, "plainly", tmp_path)
    expected_code, expected_out, expected_error, expected_events = CASES[case][1]
    assert (code, out, error, events) == CASES[case][1]
    # The same, but for the interpreter's teardown, which frees `kept` last.
    assert (plain_code, plain_out, plain_error) == (expected_code, expected_out, expected_error)
    assert plain_events == [*expected_events, "teardown"]


def test_python_m_ends_without_the_teardown_too(tmp_path):
    (tmp_path / "a_script.py").write_text(script("returns", "through run_as_script"))
    proc = run([sys.executable, "-m", "a_script"], tmp_path / "events.log", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "out")
    assert (tmp_path / "events.log").read_text().splitlines() == ["thread", "atexit"]


# A tool that runs the script and takes over after it: (its options, what shows it took over,
# and the events: the script's thread, atexit's functions, then the interpreter's teardown).
# pdb restarts the script, which clears its globals: the teardown comes first and the thread
# fails, so pdb's own line is the evidence.
TOOLS = {
    "cProfile": (
        ["-m", "cProfile", "-o", "{tmp}/run.prof"],
        "out",
        ["thread", "atexit", "teardown"],
    ),
    "pdb": (["-m", "pdb", "-c", "continue"], "The program finished and will be restarted", None),
    "python -i": (["-i"], "out", ["thread", "atexit", "teardown"]),
}


@pytest.mark.parametrize("tool", TOOLS)
def test_a_tool_that_runs_the_script_gets_the_interpreter_back_after_it(tool, tmp_path):
    arguments, shown, events = TOOLS[tool]
    path, log = tmp_path / "a_script.py", tmp_path / "events.log"
    path.write_text(script("returns", "through run_as_script"))
    command = [sys.executable, *(a.format(tmp=tmp_path) for a in arguments), str(path)]
    proc = run(command, log)
    assert proc.returncode == 0 and shown in proc.stdout, proc.stderr
    if events:
        assert log.read_text().splitlines() == events
    if tool == "cProfile":
        assert "main" in {name for _, _, name in pstats.Stats(str(tmp_path / "run.prof")).stats}
