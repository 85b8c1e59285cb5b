"""A benchmark's figures: each a value against a yardstick measured in the same run, as
outputs/bench/<name>.json (read by table.py) beside the human table outputs/bench/<name>.md.

    {"rows": [{"benchmark": str, "figure": "<what, units>", "value": float,
               "yardstick": "<what it is compared with>", "yardstick_value": float,
               "ratio": float, "target": "<= 1.03" or null, "met": bool or null}]}

A target bounds the ratio (value / yardstick_value) or, given with a unit ("< 1.5 s"), the value.
"""

import json
import operator
from dataclasses import asdict, dataclass

from sweeps import OUT, ROOT

BOUNDS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass
class Figure:
    benchmark: str
    figure: str
    value: float
    yardstick: str
    yardstick_value: float
    target: str | None = None  # e.g. "<= 1.03" on the ratio, "< 1.5 s" on the value

    @property
    def ratio(self) -> float:
        return self.value / self.yardstick_value

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        bound, limit, *unit = self.target.split()
        return BOUNDS[bound](self.value if unit else self.ratio, float(limit))

    def row(self) -> dict:
        fields = asdict(self)
        target = fields.pop("target")
        return {**fields, "ratio": self.ratio, "target": target, "met": self.met}


def write(name: str, figures: list[Figure], markdown: str) -> None:
    """outputs/bench/<name>.md and .json; prints the table and where it went."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.md").write_text(markdown)
    rows = [f.row() for f in figures]
    (OUT / f"{name}.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"\n{markdown}\nwritten to {(OUT / name).relative_to(ROOT)}.md and .json")


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def markdown_table(rows: list[dict]) -> str:
    """Rows (as in the json) as a markdown table."""
    lines = [
        "| benchmark | figure | value | yardstick | yardstick value | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {None: "-", True: "yes", False: "**no**"}[r["met"]]
        lines.append(
            f"| {r['benchmark']} | {r['figure']} | {number(r['value'])} | {r['yardstick']} | "
            f"{number(r['yardstick_value'])} | {r['ratio']:.3f} | {r['target'] or '-'} | {met} |"
        )
    return "\n".join(lines)
