"""A sweep dir -> results.csv, report.md, report.html (images embedded), the PNG charts, and
the console's summary of the same ranking (printed when a multirun ends)."""

import base64
import csv
import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from optsweep.errors import UserError
from optsweep.report import plots
from optsweep.report.trials import (
    NO_RESULT,
    Group,
    Trial,
    expected_trials,
    higher_is_better,
    leaderboard,
    read_trials,
    unranked,
)
from optsweep.results import PRUNED, RANKED, UNFINISHED, schedule_of, where_stopped

MEAN_LOSS = "train/mean_loss"
# The leaderboard's top rows on the console; report.md and report.html hold every row.
CONSOLE_ROWS = 10
CHARTS = {
    "train_mean_loss.png": "Training mean loss per epoch",
    "val_metric.png": "Validation metric per epoch",
    "lr_sensitivity.png": "LR sensitivity",
    "lr_schedule.png": "LR schedule applied",
}


def _overrides(trial: Trial) -> dict[str, str]:
    pairs = (o.split("=", 1) for o in trial.result.get("overrides", []) if "=" in o)
    return {k: v for k, v in pairs if k != "seed" and not k.startswith(("paths.", "hydra"))}


def _varying(trials: list[Trial]) -> list[str]:
    """The override keys whose values differ between trials: what a reader compares."""
    values: dict[str, set] = {}
    for trial in trials:
        for key, value in _overrides(trial).items():
            values.setdefault(key, set()).add(value)
    keys = {
        k for k, v in values.items() if len(v) > 1 or any(k not in _overrides(t) for t in trials)
    }
    return sorted(keys)


def _setting(trial: Trial, keys: list[str]) -> str:
    overrides = _overrides(trial)
    return ", ".join(f"{k}={overrides[k]}" for k in keys if k in overrides) or trial.name


def _reason(trial: Trial) -> str:
    return (trial.result.get("stopped") or {}).get("reason") or trial.result.get("error") or ""


def write_csv(trials: list[Trial], path: Path) -> None:
    metrics = sorted({k for t in trials for h in t.history for k in h if k != "epoch"})
    columns = ["trial", "group", "status", "epochs", "optimizer", "lr", "scheduler", "seed"]
    columns += [f"{kind}:{m}" for m in metrics for kind in ("best", "final")]
    columns += ["wall_seconds", "checkpoint", "stopped_at", "reason", "overrides"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for t in trials:
            row = {
                "trial": t.name,
                "group": t.result.get("group", ""),
                "status": t.status,
                "epochs": len(t.history),
                **{k: t.choices.get(k, "") for k in ("optimizer", "lr", "scheduler", "seed")},
                **{f"best:{m}": t.best(m) for m in metrics},
                **{f"final:{m}": t.final(m) for m in metrics},
                "wall_seconds": t.result.get("wall_seconds", ""),
                "checkpoint": (t.result.get("checkpoints") or {}).get("best") or "",
                "stopped_at": where_stopped(t.result) if t.status not in RANKED else "",
                "reason": _reason(t),
                "overrides": " ".join(t.result.get("overrides", [])),
            }
            writer.writerow(row)


def _format(group: Group) -> str:
    if len(group.values) == 1:
        return f"{group.mean:.4g} (n=1)"
    return f"{group.mean:.4g} ± {group.std:.2g} (n={len(group.values)})"


def verdict(groups: list[Group], metric: str, keys: list[str]) -> list[str]:
    """The best setting in one sentence, its margin, and whether seeds can tell them apart."""
    if not groups:
        return ["No trial has finished with a value yet: nothing to rank."]
    best = groups[0]
    sentence = f"**Best: {_setting(best.trials[0], keys)}**, final {metric} {_format(best)}"
    if len(groups) == 1:
        return [sentence + ", the only ranked setting."]
    second = groups[1]
    margin = abs(best.mean - second.mean)
    relative = margin / abs(second.mean) if second.mean else float("inf")
    lines = [
        f"{sentence}, {margin:.3g} ({relative:.1%}) "
        f"{'above' if higher_is_better(metric) else 'below'} the runner-up "
        f"{_setting(second.trials[0], keys)} ({_format(second)})."
    ]
    spread = max(best.std, second.std)
    if len(best.values) < 2 or len(second.values) < 2:
        lines.append(
            "One seed per setting: the seed-to-seed spread is unknown, so the margin may be "
            "noise. Add `seed=0,1,2` to the sweep to measure it."
        )
    elif margin <= spread:
        lines.append(
            f"Note: the margin ({margin:.3g}) is inside the seed-to-seed spread (std up to "
            f"{spread:.3g}); these two settings are not separated by this sweep."
        )
    return lines


def _pruning_notes(trials: list[Trial]) -> list[str]:
    """What a pruned sweep's ranking means: pruned trials are not in it, and schedules meet
    only here, at their last epoch (pruning.py compares trials per schedule)."""
    pruners = {t.choices.get("prune") for t in trials} - {None, "none"}
    if not pruners:
        return []
    pruned = sum(t.status == PRUNED for t in trials)
    notes = [
        f"Pruned sweep (prune={', '.join(sorted(pruners))}): {pruned} trial(s) stopped at a "
        "rung; their values are of an earlier epoch, so they are listed, not ranked."
    ]
    schedules = {schedule_of(t.choices, t.result.get("overrides", [])) for t in trials}
    if len(schedules) > 1:
        notes.append(
            f"The sweep varies the LR schedule ({len(schedules)} schedules). Mid-run, a "
            "fast-decaying schedule shows a lower loss than it ends with, so pruning compared "
            "each trial only with trials on the same schedule; schedules are compared here, at "
            "their last epoch."
        )
    return notes


def _lr_free_notes(trials: list[Trial]) -> list[str]:
    """How to read an LR-free optimizer's `lr` (result.json `choices.lr_free`)."""
    names = sorted({str(t.choices.get("optimizer")) for t in trials if t.lr_free})
    if not names:
        return []
    return [
        f"LR-free: {', '.join(names)}. Their lr multiplies the step size they estimate "
        "(d * lr, logged as train/lr), 1 by default: their LR-sensitivity line is over that "
        "multiplier, not over an LR comparable with the other optimizers'."
    ]


@dataclass
class Report:
    path: Path  # report.md; report.html lies beside it
    summary: str  # for the console: the verdict, the leaderboard's top rows, what is not ranked


def write_report(sweep_dir: Path, metric: str = MEAN_LOSS) -> Report:
    sweep_dir = Path(sweep_dir)
    trials = read_trials(sweep_dir)
    logged = sorted({key for t in trials for row in t.history for key in row if key != "epoch"})
    if logged and metric not in logged:
        raise UserError(
            f"report.metric={metric}: no trial in {sweep_dir} logged it; "
            f"they logged {', '.join(logged)}"
        )
    groups, others = leaderboard(trials, metric), unranked(trials, metric)
    keys = _varying(trials)
    write_csv(trials, sweep_dir / "results.csv")
    val_metric = metric if metric.startswith("val/") else "val/loss"
    charts = {
        "train_mean_loss.png": plots.per_epoch(
            trials, MEAN_LOSS, "Training mean loss per epoch", sweep_dir / "train_mean_loss.png"
        ),
        "val_metric.png": plots.per_epoch(
            trials, val_metric, f"{val_metric} per epoch", sweep_dir / "val_metric.png"
        ),
        "lr_sensitivity.png": plots.lr_sensitivity(
            trials, metric, sweep_dir / "lr_sensitivity.png"
        ),
        "lr_schedule.png": plots.lr_schedules(trials, sweep_dir / "lr_schedule.png"),
    }
    expected = expected_trials(sweep_dir)
    direction = "higher" if higher_is_better(metric) else "lower"
    intro = [
        f"{len(trials)} trials in `{sweep_dir}`; ranked by the final {metric} ({direction} "
        "is better), repeats over seeds as mean ± std (n)."
    ]
    if expected is not None and expected > len(trials):
        intro.append(
            f"Incomplete: {len(trials)} of the {expected} trials the sweep asks for have started."
        )
    intro += _pruning_notes(trials)
    intro += _lr_free_notes(trials)
    still = [t for t in trials if t.status in UNFINISHED or t.status == NO_RESULT]
    if still:
        intro.append(f"{len(still)} trial(s) have no final result yet (running or interrupted).")
    board = [["rank", "setting", f"final {metric}", "epochs", "wall (s)"]] + [
        [
            str(rank),
            _setting(g.trials[0], keys),
            _format(g),
            "/".join(str(len(t.history)) for t in g.trials),
            f"{sum(t.result.get('wall_seconds', 0) for t in g.trials):.0f}",
        ]
        for rank, g in enumerate(groups, 1)
    ]
    rest = [["setting", "seed", "status", "stopped at", "reason"]] + [
        [
            _setting(t, keys),
            str(t.choices.get("seed", "")),
            t.status,
            where_stopped(t.result),
            _reason(t),
        ]
        for t in others
    ]
    sections = {
        "intro": intro,
        "verdict": verdict(groups, metric, keys),
        "leaderboard": board,
        "others": rest,
        "charts": charts,
    }
    path = sweep_dir / "report.md"
    path.write_text(_markdown(sweep_dir.name, sections))
    path.with_suffix(".html").write_text(_html(sweep_dir.name, sections))
    return Report(path, _console(path, sections))


def _md_table(rows: list[list[str]]) -> str:
    cells = [[c.replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells[1:]])


def _markdown(name: str, s: dict) -> str:
    parts = [f"# Sweep report: {name}", *s["intro"], *s["verdict"], "## Leaderboard"]
    parts.append(_md_table(s["leaderboard"]) if len(s["leaderboard"]) > 1 else "(none yet)")
    if len(s["others"]) > 1:
        parts += ["## Trials without a ranked result", _md_table(s["others"])]
    parts.append("## Charts")
    parts += [f"![{CHARTS[file]}]({file})" for file in s["charts"]]
    return "\n\n".join(parts) + "\n"


def _text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _console(path: Path, s: dict) -> str:
    """The report in a few lines: its sentences, the top of its leaderboard, and the trials it
    does not rank, counted by status (report.md lists them with their reasons)."""
    parts = ["\n".join(t.replace("**", "").replace("`", "") for t in s["intro"] + s["verdict"])]
    board = s["leaderboard"]
    if len(board) > 1:
        parts.append(_text_table(board[: CONSOLE_ROWS + 1]))
        if len(board) - 1 > CONSOLE_ROWS:
            parts[-1] += f"\n({CONSOLE_ROWS} of {len(board) - 1} settings; all in {path.name})"
    statuses = Counter(row[2] for row in s["others"][1:])
    if statuses:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        parts.append(f"Not ranked: {counts} (their reasons are in {path.name}).")
    parts.append(f"report: {path} and {path.with_suffix('.html')}")
    return "\n\n".join(parts)


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(name: str, s: dict) -> str:
    def paragraph(text: str) -> str:
        escaped = html.escape(text)
        while "**" in escaped:  # the verdict's bold
            escaped = escaped.replace("**", "<b>", 1).replace("**", "</b>", 1)
        return f"<p>{escaped.replace('`', '')}</p>"

    images = "".join(
        f"<figure><img alt='{html.escape(CHARTS[file])}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'><figcaption>"
        f"{html.escape(CHARTS[file])}</figcaption></figure>"
        for file, path in s["charts"].items()
    )
    others = (
        "<h2>Trials without a ranked result</h2>" + _html_table(s["others"])
        if len(s["others"]) > 1
        else ""
    )
    board = _html_table(s["leaderboard"]) if len(s["leaderboard"]) > 1 else "<p>(none yet)</p>"
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left}th{background:#f3f3f3}img{max-width:100%}"
        "figure{display:inline-block;width:48%;margin:0 1% 1em 0}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Sweep report: "
        f"{html.escape(name)}</title><style>{style}</style></head><body>"
        f"<h1>Sweep report: {html.escape(name)}</h1>"
        + "".join(paragraph(t) for t in s["intro"] + s["verdict"])
        + f"<h2>Leaderboard</h2>{board}{others}<h2>Charts</h2>{images}</body></html>\n"
    )
