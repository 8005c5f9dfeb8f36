"""The dashboard page: server-rendered and self-contained (inline CSS, no script, relative links only), from the
report of `report.catalog_report`, or the reason why there is none.

Links stay under the page's mount point (`/talkvid/`: clip views, thumbnails, release files), except the links of
runs to their Airflow task instance: those go one level up, to the Airflow UI the page is mounted in, and open in the
top window (the page is shown in the UI's iframe)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from talkvid_ops.catalog.status import DecisionStatus

REASON_CHARS = 300  # failure messages can hold whole tool outputs
STYLE = """
:root { color-scheme: light dark; --fg: #1f2933; --muted: #637381; --line: #d9dee3; --card: #f6f8fa;
        --ok: #2e7d32; --bad: #c62828; --wait: #9e9e9e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e7eb; --muted: #9aa5b1; --line: #3e4c59; --card: #1f2933; }
  body { background: #111820; }
}
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); margin: 16px 20px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 6px; }
.meta, .empty { color: var(--muted); } code { font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
        min-width: 120px; }
.card .n { font-size: 24px; font-weight: 600; } .card .label { color: var(--muted); } .card .parts { font-size: 12px; }
table { border-collapse: collapse; margin: 4px 0 8px; } th { text-align: left; color: var(--muted); font-weight: 600; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: flex; width: 220px; height: 12px; border-radius: 3px; overflow: hidden; background: var(--line); }
.bar span { display: block; } .passed { background: var(--ok); } .failed { background: var(--bad); }
.undecided { background: var(--wait); } .reason { max-width: 720px; word-break: break-word; }
.strip { display: flex; flex-wrap: wrap; gap: 8px; }
.clip { display: flex; flex-direction: column; width: 160px; font-size: 12px; text-decoration: none; color: inherit; }
.clip img { width: 160px; height: 90px; object-fit: cover; border-radius: 3px; background: var(--line); }
.clip .noimg { width: 160px; height: 90px; display: flex; align-items: center; justify-content: center;
               border-radius: 3px; background: var(--card); border: 1px dashed var(--line); font-size: 11px; }
.clip .vb { color: var(--bad); font-variant-numeric: tabular-nums; }
"""
DECISION_STATUSES = tuple(DecisionStatus)  # also the CSS classes of the decision bar


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _code(value: Any) -> str:
    return f"<code>{_e(value)}</code>"


def _when(iso: str | None) -> str:
    """An ISO timestamp to the second, as the catalog stores it (UTC)."""
    return _e(iso[:19].replace("T", " ")) if iso else ""


def _pairs(counts: dict[str, Any]) -> str:
    return ", ".join(f"{_e(k)}={_e(v)}" for k, v in sorted(counts.items())) or "none"


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """Rows of already-escaped cells; a cell starting with '<td' is used as is (numbers, classes)."""
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    cells = (("".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row)) for row in rows)
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(n: Any) -> str:
    return f'<td class="num">{_e(n)}</td>'


def _card(label: str, total: Any, parts: dict[str, Any] | None = None) -> str:
    detail = f'<div class="parts">{_pairs(parts)}</div>' if parts else ""
    return f'<div class="card"><div class="n">{_e(total)}</div><div class="label">{_e(label)}</div>{detail}</div>'


def _stage_cards(status: dict[str, Any]) -> str:
    videos_failed = sum(status["video_failures"].values())
    scorings = status["scorings"]
    return '<div class="cards">' + "".join([
        _card("sources", sum(status["sources"].values()), status["sources"]),
        _card("videos", sum(status["videos"].values()), status["videos"]),
        _card("videos failed", videos_failed, status["video_failures"]),
        _card("videos gone since crawl", status["videos_gone"]),
        _card("clips", status["clips"], {f"generation {k}": v for k, v in status["clip_generations"].items()}),
        _card("scorings", sum(scorings.values()), scorings),
        _card("releases", status["releases"]),
    ]) + "</div>"  # fmt: skip


def _reason(subject: str, reason: str | None) -> str:
    return f'{_code(subject)} <span class="reason">{_e((reason or "")[:REASON_CHARS])}</span>'


def _failures(failures: dict[str, dict[str, dict[str, Any]]]) -> str:
    sections = [("videos", "Downloads and probes, by error class"), ("segmentations", "Segmentation, by error class"),
                ("scorings", "Scoring, by scorer")]  # fmt: skip
    out = []
    for key, title in sections:
        rows = [
            [_e(group), _num(entry["count"]), "<br>".join(_reason(x["id"], x["reason"]) for x in entry["examples"])]
            for group, entry in sorted(failures[key].items())
        ]
        out.append(f"<h3>{_e(title)}</h3>" + _table(["class", "failed", "latest reasons"], rows, "no failures"))
    return "".join(out)


def _decisions(decisions: dict[str, dict[str, int]]) -> str:
    rows = []
    for profile, counts in sorted(decisions.items()):
        total = sum(counts.values())
        shares = "".join(f'<span class="{s}" style="width:{100 * counts.get(s, 0) / total:.1f}%"></span>' for s in DECISION_STATUSES)
        numbers = [_num(counts.get(s, 0)) for s in DECISION_STATUSES]
        rows.append([_e(profile), *numbers, _num(total), f'<div class="bar">{shares}</div>'])
    return _table(["profile", *DECISION_STATUSES, "clips", ""], rows, "no decisions yet")


def task_instance_link(dag_id: str, dag_run_id: str, task_id: str, map_index: int | None) -> str:
    """The Airflow 3 UI's page of a task instance (its index tab is the log), relative to the UI's base URL as seen
    from the page at `<base>/talkvid/`: the UI routes `dags/:dagId/runs/:runId/tasks/:taskId[/mapped/:mapIndex]`."""
    parts = ["dags", dag_id, "runs", dag_run_id, "tasks", task_id]
    if map_index is not None and map_index >= 0:
        parts += ["mapped", str(map_index)]
    return "../" + "/".join(quote(part, safe="") for part in parts)


def _runs(runs: list[dict[str, Any]]) -> str:
    def airflow(run: dict[str, Any]) -> str:
        if not run["dag_id"]:
            return '<span class="meta">outside Airflow</span>'
        mapped = f" [{_e(run['map_index'])}]" if run["map_index"] is not None and run["map_index"] >= 0 else ""
        names = " / ".join(_code(run[key]) for key in ("dag_id", "dag_run_id", "task_id")) + mapped
        if not (run["dag_run_id"] and run["task_id"]):
            return names
        href = task_instance_link(run["dag_id"], run["dag_run_id"], run["task_id"], run["map_index"])
        return f'<a href="{_e(href)}" target="_top" title="the task instance and its log in Airflow">{names}</a>'

    rows = [[_when(r["started_at"]), _e(r["stage"]), _e(r["status"]), _pairs(r["counts"]), airflow(r), _code(r["id"])] for r in runs]
    headers = ["started (UTC)", "stage", "status", "counts", "Airflow dag / run / task", "run"]
    return _table(headers, rows, "no runs yet")


def _number(value: float | None) -> str:
    return "no value" if value is None else f"{value:.4g}"


def _value_vs_bound(example: dict[str, Any]) -> str:
    """`41.2 < min 60` (or `> max`, or the range when the value lies inside it), with the backend judged."""
    value, low, high = example["value"], example["min"], example["max"]
    if value is not None and low is not None and value < low:
        bound = f"&lt; min {_number(low)}"
    elif value is not None and high is not None and value > high:
        bound = f"&gt; max {_number(high)}"
    else:
        bound = f"bounds {_number(low) if low is not None else '-'}..{_number(high) if high is not None else '-'}"
    return f"{_e(_number(value))} {bound} ({_e(example['backend'])})"


def _example_clip(example: dict[str, Any]) -> str:
    clip = quote(example["clip_id"], safe="")
    picture = (f'<img src="thumbnails/{clip}.jpg" alt="{_e(example["clip_id"])}" loading="lazy">' if example["thumbnail"]
               else f'<span class="noimg">{_e(example["clip_id"])}</span>')  # fmt: skip
    title = f"{example['metric']} of clip {example['clip_id']}"
    return f'<a class="clip" href="clips/{clip}" title="{_e(title)}">{picture}<span class="vb">{_value_vs_bound(example)}</span></a>'


def _rejections(by_profile: dict[str, dict[str, dict[str, Any]]]) -> str:
    out = []
    for profile, criteria in by_profile.items():
        rows = [[_e(criterion), _num(entry["count"]), '<div class="strip">' + "".join(map(_example_clip, entry["examples"])) + "</div>"]
                for criterion, entry in criteria.items()]  # fmt: skip
        out.append(f"<h3>{_code(profile)}</h3>" + _table(["criterion", "clips failed", "rejected clips (value vs bound, backend)"], rows, ""))
    return "".join(out) or '<p class="empty">no clip was rejected</p>'


def _sources(sources: list[dict[str, Any]]) -> str:
    def state(source: dict[str, Any]) -> str:
        if source["paused_until"]:
            return f"{_e(source['status'])} until {_when(source['paused_until'])}"
        return _e(source["status"])

    rows = [
        [f'{_e(s["name"])}<br>{_code(s["locator"]) if s["locator"] != s["name"] else ""}', _e(s["kind"]), "yes" if s["enabled"] else "no",
         state(s), _num(s["backoff_level"]), _pairs(s["videos"]), _when(s["last_crawled_at"]),
         f'<span class="reason">{_e((s["last_error"] or "")[:REASON_CHARS])}</span>']
        for s in sources
    ]  # fmt: skip
    headers = ["source", "kind", "enabled", "status", "back-off", "videos", "last crawled (UTC)", "last error"]
    return _table(headers, rows, "no sources yet")


def _pending(pending: dict[str, Any]) -> str:
    score = pending["score"]
    rows = [
        ["segment", _num(pending["segment"]["videos"]), f"probed videos not segmented with the current parameters {_code(pending['segment']['params_hash'])}"]
    ]
    rows += [
        [f"score {_e(scorer)}", _num(n), "clips without a scoring of this scorer: the next score run takes them (of videos whose file is in place)"]
        for scorer, n in score.items()
    ]
    rows += [
        [f"decide {_e(p)}", _num(n), "scored clips without a decision of this profile, or scored again since"] for p, n in sorted(pending["decide"].items())
    ]
    for profile, counts in sorted(pending["curate"].items()):
        rows.append([f"labels {_e(profile)}", _num(counts["without_labels"]), f"of its {_e(counts['passed'])} passed clips without an estimated age group"])
        rows.append([f"speakers {_e(profile)}", _num(counts["without_speaker"]), f"of its {_e(counts['passed'])} passed clips without a face descriptor"])
    return _table(["stage", "pending", "what"], rows, "")


def _releases(releases: list[dict[str, Any]]) -> str:
    def links(release: dict[str, Any]) -> str:
        base = f"releases/{quote(release['id'], safe='')}/files/"
        return " ".join(f'<a href="{_e(base + quote(path))}">{_e(path)}</a>' for path in release["top_files"])

    rows = [
        [_e(r["name"]), _e(r["profile"]), _when(r["created_at"]), _pairs(r["counts"]), links(r),
         _num(r["file_count"]), _code(r["out_dir"])]
        for r in releases
    ]  # fmt: skip
    headers = ["release", "profile", "created (UTC)", "counts", "files", "all files", "directory"]
    return _table(headers, rows, "no releases yet")


def _gone(gone: list[dict[str, Any]], total: int) -> str:
    rows = [
        [_code(f"{v['platform']}:{v['platform_id']}"), _e(v["title"]), f'<span class="reason">{_e(v["reason"])}</span>',
         _when(v["checked_at"]), _code(v["url"])]
        for v in gone
    ]  # fmt: skip
    shown = f'<p class="meta">the {len(gone)} most recently checked of {total}</p>' if total > len(gone) else ""
    headers = ["video", "title", "reason", "checked (UTC)", "url"]
    return shown + _table(headers, rows, "none: every rechecked video is still online")


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f"<body>{body}</body></html>")  # fmt: skip


def render_dashboard(report: dict[str, Any]) -> str:
    status = report["status"]
    header = (
        f'<h1>talkvid catalog</h1><p class="meta">catalog {_code(report["catalog"]["url"])} &middot; data '
        f"{_code(report['catalog']['data_dir'])} &middot; {_e(report['generated_at'])} &middot; "
        '<a href="./">refresh</a> &middot; <a href="api/status">JSON</a> &middot; <a href="whatif">what-if</a> &middot; <a href="validation/">validation</a></p>'
    )
    return _page("talkvid catalog", "".join([
        header,
        "<h2>Counts per stage</h2>", _stage_cards(status),
        "<h2>Pending work</h2>", _pending(report["pending"]),
        "<h2>Sources</h2>", _sources(report["sources"]),
        "<h2>Failures</h2>", _failures(report["failures"]),
        "<h2>Decisions per profile</h2>", _decisions(status["decisions"]),
        "<h2>Rejections per criterion</h2>", _rejections(report["rejections"]),
        "<h2>Recent runs</h2>", _runs(status["runs"]),
        "<h2>Releases</h2>", _releases(report["releases"]),
        f"<h2>Videos gone since crawl ({_e(status['videos_gone'])})</h2>", _gone(report["gone"], status["videos_gone"]),
    ]))  # fmt: skip


def render_unavailable(reason: str, catalog: str) -> str:
    where = f'<p class="meta">catalog {_code(catalog)}</p>' if catalog else ""
    hint = '<p class="meta">Set TALKVID_DATABASE_URL (or TALKVID_DATA_DIR) for the Airflow API server, then <a href="./">reload</a>.</p>'
    body = f"<h1>The talkvid catalog is unavailable</h1>{where}<p>{_e(reason)}</p>{hint}"
    return _page("talkvid catalog unavailable", body)
