"""The fault test, short form (`make chaos` runs the long one): a real run SIGKILLed at random
moments and during checkpoint writes, with $TMPDIR on another file system, loses nothing."""

import os
import tempfile
from pathlib import Path

import pytest
from chaos import run_chaos

KILLS = int(os.environ.get("CHAOS_KILLS", "4"))


@pytest.mark.slow
def test_kills_at_random_moments_lose_nothing(tmp_path):
    # /dev/shm is a tmpfs: another file system than tmp_path's, as /tmp often is on clusters.
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmpdir:
        tally = run_chaos(tmp_path, KILLS, Path(tmpdir))
    print(tally.line())
    assert tally.kills == KILLS and tally.mid_write >= KILLS // 2, tally.line()
    assert tally.corrupt == 0 and tally.tmp_left == 0, tally.line()
    assert tally.problems == [], tally.problems
