"""Files that a kill, or a crash of the machine, leaves whole or not at all.

The new content goes to a temp file beside the target (the same directory, so the rename is
atomic: a temp file in $TMPDIR, often another file system, would be copied, not renamed), is
fsynced, renamed over the target, and the directory is fsynced so the rename itself survives.
Every checkpoint and result.json are written this way, and metrics.csv when it is rewritten
(it is appended to row by row, and fsynced before each checkpoint).
"""

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# `.<name>.<random>.tmp`: hidden, and never `*.ckpt` or `*.json`, so nothing reads it as data.
TEMP_SUFFIX = ".tmp"


@contextmanager
def replaced_atomically(path: Path, binary: bool = False) -> Iterator[IO]:
    """`with replaced_atomically(path) as f: f.write(...)`: `path` has the new content once
    the block ends, the old one (or none) if it raises or the process dies."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        with open(temp, "xb" if binary else "x", **({} if binary else {"newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_path(path.parent)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Whole or not at all, even if the process is killed mid-write."""
    with replaced_atomically(path) as f:
        f.write(json.dumps(payload, indent=2, default=str) + "\n")


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries (a rename in it), to the disk. POSIX:
    Windows cannot open a directory this way."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temp_files(directory: Path) -> None:
    """Temp files a kill left mid-write in `directory` (their writer is gone)."""
    for path in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        path.unlink(missing_ok=True)
