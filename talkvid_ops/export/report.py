"""The release report: one self-contained HTML file (plots as SVG and clip pictures as JPEG data URIs), offline.

Header: the profile and the thresholds it moved from its base profile. Plots: score distributions of passed and
failed clips on one axis per criterion with the thresholds drawn, pass rate per criterion, training time per
stratum, bench coverage (requested vs achieved). Clips to look at: rejected examples per criterion (value and
bound) and a clip table, each clip with the thumbnail and preview strip the score stage wrote
(`media.thumbnails`; a clip without them shows its id). Both are bounded (`EXAMPLES_PER_CRITERION`, `MAX_CLIPS`),
so a release of any size gives a report of a few MB. Durations are in the unit that suits the release's size.

SVGs carry no date and use a fixed id salt and the pictures are written once, so the same release renders to the
same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkvid_ops.catalog.metrics import metric_axis
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.curate.bench import STRATA_COLUMNS, limits_note
from talkvid_ops.curate.profiles import ANY_BACKEND, Profile, override_text
from talkvid_ops.curate.validation.agreement import validation_table
from talkvid_ops.export.card import LABEL_TITLES
from talkvid_ops.export.records import ClipRecord
from talkvid_ops.media.thumbnails import preview_path, read_picture, thumbnail_path

PLOTS = ("score-distributions", "pass-rate", "hours-per-stratum", "bench-coverage")
MAX_CLIPS = 100  # rows of the clip table; every clip is in clips.jsonl
EXAMPLES_PER_CRITERION = 6
# decision -> histogram colour; stacked in this order
DECISION_COLOURS = {DecisionStatus.PASSED: "#4c78a8", DecisionStatus.FAILED: "#e15759", DecisionStatus.UNDECIDED: "#bab0ac"}
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1b1f24; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #d0d7de; padding: .25em .6em; }
th { background: #f3f5f7; text-align: left; } figure { margin: 1em 0; } img { max-width: 100%; }
.short { color: #b3261e; } .kpi { display: inline-block; margin: 0 1.5em .5em 0; } .kpi b { font-size: 1.4em; }
td img { display: block; } .noimage { color: #57606a; font: 12px monospace; }
.examples { display: flex; flex-wrap: wrap; gap: .8em; } .examples figure { margin: 0; font-size: 12px; width: 160px; }
figcaption { overflow-wrap: anywhere; }
"""


@dataclass(frozen=True)
class DurationUnit:
    """The unit every duration of one report is given in: seconds, minutes or hours, by the release's size."""

    name: str
    seconds: float

    @classmethod
    def for_total(cls, seconds: float) -> DurationUnit:
        if seconds < 120:
            return cls("seconds", 1.0)
        if seconds < 2 * 3600:
            return cls("minutes", 60.0)
        return cls("hours", 3600.0)

    def number(self, hours: float) -> str:
        """`hours` in this unit, to three significant figures or whole units."""
        value = hours * 3600 / self.seconds
        return f"{value:.{0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2}f}"


def _svg(fig) -> str:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "talkvid-report", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(plot_id: str, title: str, fig) -> str:
    return (f'<figure id="{plot_id}"><img alt="{html.escape(title)}" src="data:image/svg+xml;base64,{_svg(fig)}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")  # fmt: skip


def _criterion_values(
    records: list[ClipRecord], criterion, scored: set[tuple[str, str]]
) -> tuple[str, str, dict[str, list[float]], float | None, float | None] | None:
    """The values of the first rule of a criterion that any clip was scored by, per decision, with its bounds.
    `scored`: the (backend, metric) pairs of every clip's scores, so that a rule no clip was scored by costs nothing."""
    for rule in criterion.rules:
        if not any(metric == rule.metric and rule.backend in (ANY_BACKEND, backend) for backend, metric in scored):
            continue
        values: dict[str, list[float]] = {status: [] for status in DECISION_COLOURS}
        scored_by = set()
        for record in records:
            backends = sorted(record.scores) if rule.backend == ANY_BACKEND else [rule.backend]
            found = next(((b, record.scores[b][rule.metric]) for b in backends if record.scores.get(b, {}).get(rule.metric) is not None), None)
            if found is not None:
                scored_by.add(found[0])
                values[record.decision.status].append(found[1])
        if scored_by:
            return "+".join(sorted(scored_by)), rule.metric, values, rule.min, rule.max
    return None


def _score_figure(records: list[ClipRecord], profile: Profile):
    from matplotlib.figure import Figure

    scored = {(backend, metric) for r in records for backend, values in r.scores.items() for metric, v in values.items() if v is not None}
    panels = [(name, found) for name, c in profile.criteria.items() if (found := _criterion_values(records, c, scored))]
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    height = 2.6 * rows + 0.6
    fig = Figure(figsize=(11, height))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    import numpy as np

    for ax, (name, (backend, metric, values, low, high)) in zip(axes, panels):
        groups = [status for status, group in values.items() if group]
        edges = np.histogram_bin_edges([v for status in groups for v in values[status]], bins=20)
        ax.hist([values[status] for status in groups], bins=edges, stacked=True, color=[DECISION_COLOURS[s] for s in groups], label=groups)
        for bound, colour in ((low, "#d62728"), (high, "#ff7f0e")):
            if bound is not None:
                ax.axvline(bound, color=colour, linestyle="--", linewidth=1.5)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(metric_axis(backend, metric), fontsize=8)
        ax.set_ylabel("clips", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if panels:
        axes[0].legend(fontsize=7, title="clip decision", title_fontsize=7)
    fig.suptitle(f"Score distributions by decision, thresholds of {profile.name} dashed (red: min, orange: max)", fontsize=11)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.35 / height, top=1 - 0.8 / height, hspace=0.95, wspace=0.22)
    return fig


def _pass_rate_figure(rates: dict[str, dict[str, Any]]):
    from matplotlib.figure import Figure

    names = [n for n, r in rates.items() if r["pass_rate"] is not None]
    fig = Figure(figsize=(9, 0.35 * max(4, len(names)) + 1))
    ax = fig.subplots()
    ax.barh(names, [100 * rates[n]["pass_rate"] for n in names], color="#59a14f")
    ax.set_xlim(0, 100)
    ax.set_xlabel("clips passing the criterion (%)")
    ax.invert_yaxis()
    fig.subplots_adjust(left=0.22, right=0.97, bottom=0.12, top=0.97)
    return fig


def _hours_figure(hours: dict[str, dict[str, float]], unit: DurationUnit):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6))
    for ax, (name, title) in zip(fig.subplots(2, 2).ravel(), LABEL_TITLES.items()):
        values = hours.get(name, {})
        ax.bar(list(values), [h * 3600 / unit.seconds for h in values.values()], color="#f28e2b")
        ax.set_title(f"{unit.name} per {title}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.94, hspace=0.6, wspace=0.15)
    return fig


def _bench_figure(bench: dict[str, Any]):
    from matplotlib.figure import Figure

    subs = list(dict.fromkeys(r["subbenchmark"] for r in bench["strata"]))
    height = 2.4 * len(subs) + 0.4
    fig = Figure(figsize=(11, height))
    for ax, sub in zip(fig.subplots(len(subs), 1, squeeze=False).ravel(), subs):
        rows = [r for r in bench["strata"] if r["subbenchmark"] == sub]
        positions = range(len(rows))
        ax.bar([p - 0.2 for p in positions], [r["requested"] for r in rows], width=0.4, label="requested", color="#bab0ac")
        ax.bar([p + 0.2 for p in positions], [r["achieved"] for r in rows], width=0.4, label="achieved", color="#4c78a8")
        ax.set_xticks(list(positions), [r["stratum"] for r in rows], rotation=30, fontsize=8)
        ax.set_title(f"bench {sub}: {sum(r['achieved'] for r in rows)} of {sum(r['requested'] for r in rows)} clips", fontsize=10)
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.55 / height, top=1 - 0.35 / height, hspace=0.7)
    return fig


def _table(headers: list[str], rows: list[list[Any]], short_column: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        marked = short_column is not None and row[short_column]
        cells = "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        body.append(f'<tr class="short">{cells}</tr>' if marked else f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _picture(path: Path, clip_id: str) -> str:
    """The clip's picture at `path` as an embedded JPEG, or its id when it has none (scored before pictures were)."""
    data = read_picture(path)
    if data is None:
        return f'<span class="noimage">{html.escape(clip_id)}</span>'
    return f'<img alt="{html.escape(clip_id)}" src="data:image/jpeg;base64,{base64.b64encode(data).decode("ascii")}">'


def _overrides(profile: Profile) -> str:
    if not profile.overrides:
        return ""
    moved = ", ".join(f"<code>{html.escape(override_text(o))}</code>" for o in profile.overrides)
    return f"<p>Thresholds moved from its base profile: {moved}.</p>"


def _shortfall(failure: dict[str, Any]) -> float:
    """How far the value is beyond the bound it failed."""
    value, low, high = failure["value"], failure["min"], failure["max"]
    if value is None:
        return math.inf
    if low is not None and value < low:
        return low - value
    return value - high if high is not None and value > high else 0.0


def _bound(failure: dict[str, Any]) -> str:
    value, low, high = failure["value"], failure["min"], failure["max"]
    shown = "none" if value is None else f"{value:.4g}"
    if low is not None and (value is None or value < low):
        return f"{shown} < min {low:g}"
    return f"{shown} > max {high:g}" if high is not None else shown


def _rejected_examples(records: list[ClipRecord], profile: Profile, data_dir: Path) -> list[str]:
    """Per criterion, a few clips it rejected, spread from the nearest miss to the furthest, with value and bound."""
    failing: dict[str, list[tuple[ClipRecord, dict[str, Any]]]] = {name: [] for name in profile.criteria}
    for record in records:
        for failure in record.failures:
            failing.setdefault(failure["criterion"], []).append((record, failure))
    parts = []
    for name, failed in failing.items():
        if not failed:
            continue
        failed.sort(key=lambda pair: (_shortfall(pair[1]), pair[0].id))
        count = min(EXAMPLES_PER_CRITERION, len(failed))
        shown = [failed[round(i * (len(failed) - 1) / max(1, count - 1))] for i in range(count)]
        figures = "".join(
            f"<figure>{_picture(thumbnail_path(data_dir, record.id), record.id)}<figcaption><code>{record.id}</code><br>"
            f"{html.escape(f['backend'] or '')}: {html.escape(f['metric'] or '')} {html.escape(_bound(f))}</figcaption></figure>"
            for record, f in shown
        )
        more = f"<p>and {len(failed) - count} more in clips.jsonl (<code>failing</code>).</p>" if len(failed) > count else ""
        parts.append(f'<h3>{html.escape(name)}: {len(failed)} clips rejected</h3><div class="examples">{figures}</div>{more}')
    return parts or ["<p>No clip was rejected by a criterion.</p>"]


def _clip_table(records: list[ClipRecord], data_dir: Path) -> str:
    """The first MAX_CLIPS candidates (in clip id order: no choice of ours) with their pictures."""
    headers = ["thumbnail", "preview", "clip", "decision", "split", "duration", "failing criteria"]
    rows = []
    for record in records[:MAX_CLIPS]:
        cells = [_picture(thumbnail_path(data_dir, record.id), record.id), _picture(preview_path(data_dir, record.id), record.id),
                 f"<code>{record.id}</code>", html.escape(record.decision.status), html.escape(record.split),
                 f"{record.clip.duration:.1f} s", html.escape(", ".join(f["criterion"] for f in record.failures))]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    more = f"<p>and {len(records) - MAX_CLIPS} more in clips.jsonl.</p>" if len(records) > MAX_CLIPS else ""
    head = "".join(f"<th>{h}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def render_report(summary: dict[str, Any], records: list[ClipRecord], profile: Profile, data_dir: Path) -> str:
    """The report of a release; `data_dir` holds the clips' pictures."""
    counts, hours, bench = summary["counts"], summary["hours"], summary["bench"]
    unit = DurationUnit.for_total(hours["candidates"] * 3600)
    kpis = [("candidates", counts["candidates"]), ("passed", counts["passed"]), ("training clips", counts["train"]),
            (f"training {unit.name}", unit.number(hours["train"])), ("bench clips", counts["bench"]), ("held out", counts["held_out"])]  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(summary['name'])}: release report</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(summary['name'])}</h1>",
        f"<p>Profile <b>{html.escape(profile.name)}</b> (<code>{profile.content_hash}</code>), "
        f"code <code>{html.escape(summary['code_version'])}</code>, release <code>{summary['release_id']}</code>.</p>",
        _overrides(profile),
        "<div>" + "".join(f'<span class="kpi"><b>{html.escape(str(v))}</b> {html.escape(k)}</span>' for k, v in kpis) + "</div>",
        "<h2>Score distributions</h2>",
        _figure(PLOTS[0], "Score distributions of passed and failed clips with the profile's thresholds", _score_figure(records, profile)),
        "<h2>Pass rate per criterion</h2>",
        _figure(PLOTS[1], "Pass rate per criterion", _pass_rate_figure(summary["pass_rates"])),
        _table(
            ["criterion", "evaluated", "failed", "pass rate"],
            [[c, r["evaluated"], r["failed"], "-" if r["pass_rate"] is None else f"{100 * r['pass_rate']:.1f} %"] for c, r in summary["pass_rates"].items()],
        ),  # fmt: skip
        "<h2>Rejected examples per criterion</h2>",
        *_rejected_examples(records, profile, data_dir),
        "<h2>Clips</h2>",
        _clip_table(records, data_dir),
        f"<h2>{unit.name.capitalize()} per stratum (training release)</h2>",
        _figure(PLOTS[2], f"Training {unit.name} per language, age group, gender and ethnicity", _hours_figure(summary["train_hours_by"], unit)),
        _table(["label", "value", "clips", unit.name],
               [[name, value, summary["train_clips_by"][name][value], unit.number(hours)]
                for name, per in summary["train_hours_by"].items() for value, hours in per.items()]),
        "<h2>Dataset statistics (training release)</h2>",
        f"<p>Mean clip duration: {summary['statistics']['mean_duration_s']} s.</p>",
        _table(["clip duration", "clips"], [[k, n] for k, n in summary["statistics"]["duration_histogram"].items()]),
        _table(["resolution", "clips", unit.name], [[k, v["clips"], unit.number(v["hours"])] for k, v in summary["statistics"]["resolution"].items()]),
        _table(["upload year", "clips", unit.name], [[k, v["clips"], unit.number(v["hours"])] for k, v in summary["statistics"]["upload_year"].items()]),
        _table(["source", "candidates", "passed", "pass rate"],
               [[s, v["candidates"], v["passed"], f"{100 * v['pass_rate']:.1f} %"] for s, v in summary["statistics"]["pass_rate_by_source"].items()]),
        "<h2>Bench coverage</h2>",
    ]  # fmt: skip
    if bench:
        parts += [
            _figure(PLOTS[3], "Bench coverage: requested vs achieved per stratum", _bench_figure(bench)),
            _table(list(STRATA_COLUMNS), [[r[key] for key in STRATA_COLUMNS.values()] for r in bench["strata"]], short_column=4),
        ]
        note = limits_note(bench)
        parts += [f'<p class="short">{html.escape(note)}</p>'] if note else []
    else:
        parts.append("<p>No bench was drawn for this release.</p>")
    parts.append("<h2>Human validation of the filters</h2>")
    if summary.get("validation"):
        parts.append(_table(*validation_table(summary["validation"])))
    else:
        parts.append("<p>No validation set has been drawn (<code>talkvid validate draw</code>): the filters' agreement with people is unmeasured.</p>")
    rot = summary["rot"]
    parts += [
        "<h2>Sources and rot</h2>",
        _table(
            ["source", "kind", "videos", "clips", unit.name],
            [[s["name"], s["kind"], s["videos"], s["clips"], unit.number(s["hours"])] for s in summary["sources"]],
        ),
        f"<p>{rot['gone']} of {rot['videos']} source videos are gone since the crawl; {rot['unknown']} were not re-checked.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
