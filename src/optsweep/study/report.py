"""study.md and study.html: the chain of a study's decisions, from its stages' stage.json.

Per stage: what it tried, what won and by how much, whether that margin beats the seed noise,
how many trials were pruned, the epochs trained against those of the same grid unpruned, and
a link to the stage's own report. A stage with one seed per setting cannot measure its noise:
it is judged against the seed-to-seed spread the study measured where it repeats seeds (the
confirmation stage), and the report says so.
"""

import html
from dataclasses import dataclass
from pathlib import Path

from optsweep.report.render import _html_table, _md_table
from optsweep.report.trials import higher_is_better
from optsweep.results import COMPLETED, PRUNED
from optsweep.study.record import NO_WINNER, RUNNING


def _setting(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "the only setting"


def _value(group: dict) -> str:
    if group["n"] == 1:
        return f"{group['mean']:.4g} (n=1)"
    return f"{group['mean']:.4g} ± {group['std']:.2g} (n={group['n']})"


def seed_noise(records: list[dict]) -> tuple[float, str] | None:
    """The largest seed-to-seed std of the last stage that repeats seeds, and its name."""
    for record in reversed(records):
        stds = [g["std"] for g in record.get("ranking", []) if g["n"] > 1]
        if stds:
            return max(stds), record["stage"]
    return None


@dataclass
class Judgement:
    margin: float | None  # None: fewer than two ranked settings
    noise: float | None  # None: unknown
    source: str  # where the noise comes from, in words

    @property
    def separated(self) -> bool | None:
        if self.margin is None or self.noise is None:
            return None
        return self.margin > self.noise


def judge(record: dict, study_noise: tuple[float, str] | None) -> Judgement:
    ranking = record.get("ranking", [])
    if len(ranking) < 2:
        return Judgement(None, None, "")
    best, second = ranking[:2]
    margin = abs(best["mean"] - second["mean"])
    if best["n"] > 1 and second["n"] > 1:
        return Judgement(margin, max(best["std"], second["std"]), "the two settings' own seeds")
    if study_noise is None:
        return Judgement(margin, None, "one seed per setting, and no stage repeats seeds")
    std, stage = study_noise
    return Judgement(margin, std, f"one seed per setting: the seed std of stage {stage}")


def _noise_line(j: Judgement) -> str:
    if j.margin is None:
        return "Only one ranked setting: no runner-up to beat."
    if j.noise is None:
        return f"Seed noise: unknown ({j.source}); the margin may be noise."
    verdict = "beats it" if j.separated else "does not beat it: not separated"
    return f"Seed noise: {j.noise:.3g} ({j.source}); the margin {j.margin:.3g} {verdict}."


def final_verdict(records: list[dict]) -> str:
    """One line: the study's winner, and whether it is separated from the runner-up."""
    last = records[-1]
    ranking = last["ranking"]
    chosen = {**last["carried"], **ranking[0]["setting"]}
    line = f"verdict: {_setting(chosen)} wins the study (stage {last['stage']}, "
    line += f"final {last['metric']} {_value(ranking[0])})"
    j = judge(last, seed_noise(records))
    if j.margin is None:
        return line + "; it was the only setting left, nothing to separate it from."
    runner_up = f"the runner-up {_setting(ranking[1]['setting'])} ({_value(ranking[1])})"
    if j.separated is None:
        return line + f"; {runner_up} is {j.margin:.3g} away, and the seed noise is unknown."
    if j.separated:
        return (
            line + f"; separated from {runner_up}: margin {j.margin:.3g} > seed std {j.noise:.3g}."
        )
    return line + (
        f"; NOT separated from {runner_up}: margin {j.margin:.3g} <= seed std {j.noise:.3g}."
    )


def outcome(record: dict) -> str:
    """A finished stage in one line, for the console."""
    if not record["ranking"]:
        return f"no winner among its {record['trials']} trials"
    best = record["ranking"][0]
    return (
        f"{_setting(best['setting'])} won (final {record['metric']} {_value(best)}); "
        f"{record['statuses'].get(PRUNED, 0)} of {record['trials']} trials pruned, "
        f"{record['epochs_trained']} of {record['epochs_unpruned']} epochs trained"
    )


def _tried(record: dict) -> str:
    swept = [f"{k} in {{{', '.join(v)}}}" for k, v in record["grid"].items()]
    if record["settings"]:
        listed = "; ".join(", ".join(s) for s in record["settings"])
        swept.insert(0, f"the settings [{listed}]")
    tried = " x ".join(swept) or "one setting"
    if record["carried"]:
        carried = ", ".join(f"{k}={v}" for k, v in record["carried"].items())
        tried += f", at the previous winner's {carried}"
    return tried


def _statuses(record: dict, leave_out=()) -> str:
    return ", ".join(f"{n} {s}" for s, n in record["statuses"].items() if s not in leave_out)


def _stage_lines(record: dict, noise) -> list[str]:
    trials = f" ({record['trials']} trials)" if "trials" in record else ""
    lines = [f"Tried: {_tried(record)}{trials}."]
    lines += [f"Grid: {note}." for note in record["notes"]]
    lines.append(f"Command: `python train.py -m {' '.join(record['command'])}`")
    if record["status"] == RUNNING:
        return [*lines, "Not finished yet."]
    if record["status"] == NO_WINNER:
        return [*lines, f"**No winner**: no trial finished with a value ({_statuses(record)})."]
    ranking, metric = record["ranking"], record["metric"]
    won = f"Won: **{_setting(ranking[0]['setting'])}**, final {metric} {_value(ranking[0])}"
    j = judge(record, noise)
    if j.margin is not None:
        direction = "above" if higher_is_better(metric) else "below"
        relative = j.margin / abs(ranking[1]["mean"]) if ranking[1]["mean"] else float("inf")
        won += (
            f", {j.margin:.3g} ({relative:.1%}) {direction} the runner-up "
            f"{_setting(ranking[1]['setting'])} ({_value(ranking[1])})"
        )
    pruned = record["statuses"].get(PRUNED, 0)
    others = _statuses(record, leave_out=(COMPLETED, PRUNED))
    effort = (
        f"Pruned: {pruned} of {record['trials']} trials. Epochs trained: "
        f"{record['epochs_trained']} of {record['epochs_unpruned']} without pruning "
        f"({record['epochs_trained'] / max(1, record['epochs_unpruned']):.0%})."
    )
    if others:
        effort += f" Also {others}."
    return [*lines, won + ".", _noise_line(j), effort]


def _summary_row(index: int, record: dict, noise) -> list[str]:
    ranking = record.get("ranking") or []
    if not ranking:
        return [str(index), record["stage"], record["status"], "", "", "", ""]
    j = judge(record, noise)
    separated = {True: "yes", False: "no", None: "unknown"}[j.separated]
    return [
        str(index),
        record["stage"],
        _setting(ranking[0]["setting"]),
        _value(ranking[0]),
        "" if j.margin is None else f"{j.margin:.3g}",
        separated if j.margin is not None else "",
        f"{record['statuses'].get(PRUNED, 0)}/{record['trials']}",
        f"{record['epochs_trained']}/{record['epochs_unpruned']}",
    ]


def write_study_report(
    study_dir: Path, title: str, records: list[dict], verdict: str | None
) -> Path:
    noise = seed_noise(records)
    metric = next((r["metric"] for r in records if "metric" in r), "train/mean_loss")
    direction = "higher" if higher_is_better(metric) else "lower"
    intro = [
        f"{len(records)} stages in `{study_dir}`, each a sweep with its own report; ranked by "
        f"the final {metric} ({direction} is better), repeats over seeds as mean ± std (n)."
    ]
    head = ["stage", "name", "winner", f"final {metric}", "margin", "beats seed noise"]
    head += ["pruned", "epochs trained / unpruned"]
    table = [head] + [_summary_row(i, r, noise) for i, r in enumerate(records, 1)]
    table = [row + [""] * (len(head) - len(row)) for row in table]
    stages = [
        (f"{i}. {r['stage']}", f"{r['stage']}/report", _stage_lines(r, noise))
        for i, r in enumerate(records, 1)
    ]
    end = [verdict] if verdict else []
    md = [f"# Study: {title}", *intro, _md_table(table)]
    for heading, link, lines in stages:
        md += [f"## {heading} ([report]({link}.md))", *lines]
    md += ["## Verdict", *end] if end else []
    (study_dir / "study.md").write_text("\n\n".join(md) + "\n")

    def paragraph(line: str) -> str:
        escaped = html.escape(line)
        while "**" in escaped:
            escaped = escaped.replace("**", "<b>", 1).replace("**", "</b>", 1)
        return f"<p>{escaped.replace('`', '')}</p>"

    body = [f"<h1>Study: {html.escape(title)}</h1>", *map(paragraph, intro), _html_table(table)]
    for heading, link, lines in stages:
        body.append(f"<h2>{html.escape(heading)} (<a href='{link}.html'>report</a>)</h2>")
        body += map(paragraph, lines)
    body += ["<h2>Verdict</h2>", *map(paragraph, end)] if end else []
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left}th{background:#f3f3f3}"
    )
    (study_dir / "study.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Study: {html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
    return study_dir / "study.md"
