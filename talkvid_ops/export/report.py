"""The release report: one self-contained HTML file (plots embedded as SVG data URIs), viewable offline.

Plots: score distributions with the profile's thresholds drawn, pass rate per criterion, training hours per
stratum, bench coverage (requested vs achieved). SVGs carry no date and use a fixed id salt, so the same release
renders to the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

from talkvid_ops.catalog.metrics import metric_axis
from talkvid_ops.curate.bench import STRATA_COLUMNS, limits_note
from talkvid_ops.curate.profiles import ANY_BACKEND, Profile
from talkvid_ops.curate.validation.agreement import validation_table
from talkvid_ops.export.card import LABEL_TITLES
from talkvid_ops.export.records import ClipRecord

PLOTS = ("score-distributions", "pass-rate", "hours-per-stratum", "bench-coverage")
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1b1f24; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #d0d7de; padding: .25em .6em; }
th { background: #f3f5f7; text-align: left; } figure { margin: 1em 0; } img { max-width: 100%; }
.short { color: #b3261e; } .kpi { display: inline-block; margin: 0 1.5em .5em 0; } .kpi b { font-size: 1.4em; }
"""


def _svg(fig) -> str:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "talkvid-report", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(plot_id: str, title: str, fig) -> str:
    return (f'<figure id="{plot_id}"><img alt="{html.escape(title)}" src="data:image/svg+xml;base64,{_svg(fig)}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")  # fmt: skip


def _criterion_values(records: list[ClipRecord], criterion) -> tuple[str, str, list[float], float | None, float | None] | None:
    """The values of the first rule of a criterion that any clip was scored by, with its bounds."""
    for rule in criterion.rules:
        values, scored_by = [], set()
        for record in records:
            backends = sorted(record.scores) if rule.backend == ANY_BACKEND else [rule.backend]
            found = next(((b, record.scores[b][rule.metric]) for b in backends if record.scores.get(b, {}).get(rule.metric) is not None), None)
            if found is not None:
                scored_by.add(found[0])
                values.append(found[1])
        if values:
            return "+".join(sorted(scored_by)), rule.metric, values, rule.min, rule.max
    return None


def _score_figure(records: list[ClipRecord], profile: Profile):
    from matplotlib.figure import Figure

    panels = [(name, found) for name, c in profile.criteria.items() if (found := _criterion_values(records, c))]
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    height = 2.6 * rows + 0.6
    fig = Figure(figsize=(11, height))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, (backend, metric, values, low, high)) in zip(axes, panels):
        ax.hist(values, bins=20, color="#4c78a8")
        for bound, colour in ((low, "#d62728"), (high, "#ff7f0e")):
            if bound is not None:
                ax.axvline(bound, color=colour, linestyle="--", linewidth=1.5)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(metric_axis(backend, metric), fontsize=8)
        ax.set_ylabel("clips", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(f"Score distributions, thresholds of {profile.name} dashed (red: min, orange: max)", fontsize=11)
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


def _hours_figure(hours: dict[str, dict[str, float]]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6))
    for ax, (name, title) in zip(fig.subplots(2, 2).ravel(), LABEL_TITLES.items()):
        values = hours.get(name, {})
        ax.bar(list(values), list(values.values()), color="#f28e2b")
        ax.set_title(f"hours per {title}", fontsize=10)
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


def render_report(summary: dict[str, Any], records: list[ClipRecord], profile: Profile) -> str:
    counts, hours, bench = summary["counts"], summary["hours"], summary["bench"]
    kpis = [("candidates", counts["candidates"]), ("passed", counts["passed"]), ("training clips", counts["train"]),
            ("training hours", f"{hours['train']:.3f}"), ("bench clips", counts["bench"]), ("held out", counts["held_out"])]  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(summary['name'])}: release report</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(summary['name'])}</h1>",
        f"<p>Profile <b>{html.escape(profile.name)}</b> (<code>{profile.content_hash}</code>), "
        f"code <code>{html.escape(summary['code_version'])}</code>, release <code>{summary['release_id']}</code>.</p>",
        "<div>" + "".join(f'<span class="kpi"><b>{html.escape(str(v))}</b> {html.escape(k)}</span>' for k, v in kpis) + "</div>",
        "<h2>Score distributions</h2>",
        _figure(PLOTS[0], "Score distributions with the profile's thresholds", _score_figure(records, profile)),
        "<h2>Pass rate per criterion</h2>",
        _figure(PLOTS[1], "Pass rate per criterion", _pass_rate_figure(summary["pass_rates"])),
        _table(
            ["criterion", "evaluated", "failed", "pass rate"],
            [[c, r["evaluated"], r["failed"], "-" if r["pass_rate"] is None else f"{100 * r['pass_rate']:.1f} %"] for c, r in summary["pass_rates"].items()],
        ),  # fmt: skip
        "<h2>Hours per stratum (training release)</h2>",
        _figure(PLOTS[2], "Training hours per language, age group, gender and ethnicity", _hours_figure(summary["train_hours_by"])),
        _table(["label", "value", "clips", "hours"],
               [[name, value, summary["train_clips_by"][name][value], f"{hours:.3f}"]
                for name, per in summary["train_hours_by"].items() for value, hours in per.items()]),
        "<h2>Dataset statistics (training release)</h2>",
        f"<p>Mean clip duration: {summary['statistics']['mean_duration_s']} s.</p>",
        _table(["clip duration", "clips"], [[k, n] for k, n in summary["statistics"]["duration_histogram"].items()]),
        _table(["resolution", "clips", "hours"], [[k, v["clips"], f"{v['hours']:.3f}"] for k, v in summary["statistics"]["resolution"].items()]),
        _table(["upload year", "clips", "hours"], [[k, v["clips"], f"{v['hours']:.3f}"] for k, v in summary["statistics"]["upload_year"].items()]),
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
            ["source", "kind", "videos", "clips", "hours"], [[s["name"], s["kind"], s["videos"], s["clips"], f"{s['hours']:.3f}"] for s in summary["sources"]]
        ),
        f"<p>{rot['gone']} of {rot['videos']} source videos are gone since the crawl; {rot['unknown']} were not re-checked.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
