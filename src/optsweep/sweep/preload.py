"""Trials that start in about a second: forked from a process that has already imported torch,
Lightning, Hydra and optsweep, instead of a fresh interpreter that spends 6-7 s importing them.

That process, the trial server, is a fork of the launcher's own process, made when the launcher
is set up: by then the launcher has imported everything a trial needs (it runs optsweep.train)
and has not touched CUDA. CUDA cannot be used in the child of a process that initialised it;
torch's DataLoader workers rest on the same rule. The server only forks: each trial is a child
of it that runs Hydra's main on the trial's command line, exactly as `python -m optsweep.train
-m <overrides>` would, with its environment (CUDA_VISIBLE_DEVICES, thread counts) set before
anything in it can touch CUDA. Only a parent can wait for a process, so the launcher hears of
each trial's end from the server, over a pipe it also sends its requests on.
"""

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path

import torch
from hydra.core.global_hydra import GlobalHydra

from optsweep import train
from optsweep.script_exit import exit_code, exit_now

# Linux: a child gets SIGTERM when its parent dies, even by SIGKILL, instead of training on
# unattended (it records `interrupted` and can be resumed). Looked up here, not in the forked
# child, where loading a library is unsafe.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


class TrialServer:
    """The client's end of a server (`fork` makes one of the calling process): `start` is its
    subprocess.Popen."""

    def __init__(self, conn: Connection, pid: int) -> None:
        self._conn, self.pid = conn, pid
        self._ended: dict[int, int] = {}

    @classmethod
    def fork(cls) -> "TrialServer":
        if torch.cuda.is_initialized():
            raise RuntimeError("CUDA was initialised before the trial server forked")
        sys.stdout.flush()  # else each child writes the launcher's buffered output again
        sys.stderr.flush()
        ours, theirs = Pipe()
        launcher = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                serve(theirs, launcher)
            finally:  # never back into the launcher's Hydra call stack
                os._exit(0)
        theirs.close()
        return cls(ours, pid)

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        errors: Path | None = None,
        cwd: Path | None = None,
    ) -> "ForkedTrial":
        """A process running `argv` (sys.argv of `python -m optsweep.train`) in `cwd`, its stdout
        to `log` (appended) and its stderr there too, or to `errors`."""
        request = (argv, env, str(log), str(errors or log), str(cwd) if cwd else None)
        self._conn.send(("start", *request))
        while True:
            message = self._conn.recv()
            if message[0] == "started":
                return ForkedTrial(self, message[1])
            self._heard(message)

    def signal(self, pid: int, signum: int) -> None:
        self._conn.send(("signal", pid, signum))

    def exit_code(self, pid: int, timeout: float | None = 0) -> int | None:
        """The trial's exit code once it has ended (a signal's as -N, as Popen's), else None;
        a timeout of None waits for the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self._ended:
            left = None if deadline is None else max(0, deadline - time.monotonic())
            if not self._conn.poll(left):
                break
            self._heard(self._conn.recv())
        return self._ended.get(pid)

    def _heard(self, message: tuple) -> None:
        _, pid, code = message  # ("ended", pid, code): the only message sent unasked
        self._ended[pid] = code


class ForkedTrial:
    """A trial forked by the server, with the part of subprocess.Popen the launcher uses."""

    def __init__(self, server: TrialServer, pid: int) -> None:
        self.server, self.pid, self.returncode = server, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"trial {self.pid}", timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            self.server.signal(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def serve(conn: Connection, launcher: int) -> None:
    """The server's loop: fork trials as asked, report each one's end, until the launcher goes
    (its end of the pipe closes, even on SIGKILL). The trials then get SIGTERM (die_with_parent).
    Run in a fork of the launcher (TrialServer.fork), or in a process of its own that has
    imported optsweep.train (the tests' `python train.py`, tests/cli_server.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher passes a Ctrl-C on, once
    die_with_parent(launcher)
    running: set[int] = set()
    while True:
        if wait([conn], timeout=0.2):
            try:
                request, *args = conn.recv()
            except EOFError:
                return
            if request == "start":
                pid = os.fork()
                if pid == 0:
                    conn.close()
                    _run_trial(*args)
                running.add(pid)
                conn.send(("started", pid))
            elif args[0] in running:  # ("signal", pid, signum); an ended trial is not signalled
                os.kill(*args)
        while running and (ended := os.waitpid(-1, os.WNOHANG))[0]:
            running.discard(ended[0])
            conn.send(("ended", ended[0], os.waitstatus_to_exitcode(ended[1])))


def _run_trial(argv: list[str], env: dict[str, str], log: str, errors: str, cwd: str | None):
    """In the forked child: the trial as its own process would run it, then exit."""
    code = 1
    try:
        # Its own session: a Ctrl-C reaches the launcher only, which stops each trial once.
        os.setsid()
        die_with_parent(os.getppid())
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd, path in ((1, log), (2, errors)):
            output = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(output, fd)
            os.close(output)
        if cwd:
            os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        # What a fresh interpreter takes from its environment, this one has already set up:
        # torch's threads, and the temp dir once anything asked for it.
        if "OMP_NUM_THREADS" in env:
            torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
        tempfile.tempdir = None
        sys.argv = argv
        GlobalHydra.instance().clear()  # the launcher's: this process runs Hydra's main afresh
        code = exit_code(train.main)
    except BaseException:
        traceback.print_exc()
    finally:
        exit_now(code)
