"""The table `make bench` ends with: every figure of the benchmarks it ran, from their
outputs/bench/<name>.json (see figures.py), printed and written to outputs/bench/README.md.

    python bench/table.py harness augment trial_start sweep_wall
"""

import json
import os
import sys
from datetime import datetime

from figures import markdown_table
from sweeps import OUT, ROOT, cpu_name


def main(names: list[str]) -> int:
    rows = []
    for name in names:
        path = OUT / f"{name}.json"
        if not path.is_file():
            print(f"error: bench/{name}.py wrote no {path.relative_to(ROOT)}", file=sys.stderr)
            return 1
        rows += json.loads(path.read_text())["rows"]
    missed = [r for r in rows if r["met"] is False]
    text = "\n".join(
        [
            f"# Benchmarks ({datetime.now():%Y-%m-%d %H:%M})",
            "",
            f"{', '.join(names)} on {os.cpu_count()} CPUs ({cpu_name()}), load average "
            f"{os.getloadavg()[1]:.1f} over the last 5 min. Each figure is against a yardstick "
            "measured in the same run; ratio = value / yardstick value. Details (the command, "
            "each run): outputs/bench/<benchmark>.md.",
            "",
            markdown_table(rows),
            "",
            f"Targets missed: {len(missed)} of {sum(r['met'] is not None for r in rows)}.",
        ]
    )
    (OUT / "README.md").write_text(text + "\n")
    print(f"\n{text}\n\nwritten to {(OUT / 'README.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
