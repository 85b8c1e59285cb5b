"""One process trains a run dir at a time, whichever launcher started it (basic, local,
submitit, ray) and whether it is a sweep trial or a single run continued with ckpt_path=last.

Two processes in one dir would interleave their last.ckpt, result.json and metrics.csv
writes. The second one is refused at once rather than made to wait: waiting would hold a
sweep slot (a GPU) idle, and once the first ended it would find the trial finished and skip
it anyway. So two sweeps of one grid at once share the work: each skips what the other trains.

The lock is an OS lock (flock) on `.lock` in the run dir, held for the whole run. The OS
drops it when its process ends, however it ends, so a SIGKILL leaves no stale lock; the file
itself is removed when the run ends, and one a kill left behind is simply locked again.
On NFS, Linux emulates flock with POSIX locks (NFSv4 or NLM), which hold across machines;
a lock held by a machine that crashed is released only when its NFS lease expires (about
90 s), so a trial requeued at once from a dead node may be refused until then. A file system
without locks (an NFS mount with `nolock`, some Lustre mounts) has flock fail: the run goes
on unguarded, with a warning.
"""

import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from optsweep.errors import UserError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)


class Busy(UserError):
    """The run dir is being trained by another process: `holder` says which."""

    def __init__(self, run_dir: Path, holder: str) -> None:
        super().__init__(f"{run_dir} is being trained by {holder}: wait for it to end")
        self.holder = holder


def _lock(path: Path) -> int | None:
    """An open file descriptor of `path`, locked; None if the file system has no locks."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Busy(path.parent, holder) from None
        except OSError as err:
            os.close(fd)
            if err.errno not in NO_LOCKS:
                raise
            log.warning("cannot lock %s (%s): nothing stops a second process here", path, err)
            return None
        # The holder before us removes the file as it ends: a lock on the file it removed
        # guards nothing, so lock the one at `path` now.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """Train in `run_dir` while no other process does; raises Busy if one does."""
    path = Path(run_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # Lightning's multi-device strategies start one process per device with this same
    # command: rank 0 holds the lock for the run, the others train beside it.
    fd = None if int(os.environ.get("LOCAL_RANK", 0)) > 0 else _lock(path)
    if fd is None:
        yield
        return
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before the lock goes, so nobody locks a removed file
        os.close(fd)
