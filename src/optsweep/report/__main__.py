"""`python -m optsweep.report <sweep_dir> [report.metric=val/acc]`: write the sweep's report."""

import sys
from pathlib import Path

from optsweep.errors import UserError
from optsweep.report.render import MEAN_LOSS, write_report


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("report.metric=")]
    metric = next((a.split("=", 1)[1] for a in argv if a.startswith("report.metric=")), MEAN_LOSS)
    if len(args) != 1 or not Path(args[0]).is_dir():
        print(
            "usage: python -m optsweep.report <sweep_dir> [report.metric=val/acc]", file=sys.stderr
        )
        return 2
    try:
        report = write_report(Path(args[0]), metric)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
