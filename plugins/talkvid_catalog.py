"""The catalog dashboard in the Airflow UI: what the pipeline holds, what failed and why, what was released.

An Airflow plugin: a FastAPI app that Airflow's API server mounts at `/talkvid/`, and a nav entry (Browse ->
Catalog) that shows it in an iframe. The page and `api/status` read the catalog named by TALKVID_DATABASE_URL /
TALKVID_DATA_DIR at request time; importing this module loads neither talkvid nor a database driver, because every
Airflow component (scheduler, workers, DAG processor) imports the plugins folder.

Airflow does not guard plugin apps with its login, so the mounted app asks Airflow's auth manager for the caller:
the UI's session cookie (sent by the iframe) or a bearer token, as the REST API accepts them.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

URL_PREFIX = "/talkvid"
RECENT_RUNS = 15
FAILURE_EXAMPLES = 3
LISTED_ROWS = 20  # gone videos and releases shown on the page
REASON_CHARS = 300  # failure messages can hold whole tool outputs


class CatalogUnavailable(Exception):
    """The catalog cannot be read: unreachable, not initialised, or the settings naming it are invalid."""

    def __init__(self, reason: str, catalog: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.catalog = catalog


def open_catalog():
    """The talkvid Context for this request, after checking that its catalog exists and is at the code's schema."""
    try:
        from talkvid_ops.catalog import db
        from talkvid_ops.context import Context
        from talkvid_ops.errors import TalkvidError
    except ImportError as exc:
        raise CatalogUnavailable(f"talkvid is not installed in this Airflow component: {exc}") from None
    try:
        ctx = Context.from_env()
    except TalkvidError as exc:
        raise CatalogUnavailable(f"talkvid settings are invalid: {exc}") from None
    try:
        db.check_catalog(ctx.settings.database_url)
    except db.CatalogUnavailable as exc:
        raise CatalogUnavailable(exc.reason, exc.catalog) from None
    return ctx


def catalog_report() -> dict[str, Any]:
    """Everything the page shows, as JSON: `catalog_status` plus failure reasons, gone videos and releases."""
    from sqlalchemy.exc import SQLAlchemyError

    from talkvid_ops.catalog import db
    from talkvid_ops.catalog.queries import catalog_status, failure_examples, gone_videos, recent_releases

    ctx = open_catalog()
    where = ctx.settings.redacted_database_url()
    try:
        with ctx.sessions() as session:
            return {
                "catalog": {"url": where, "data_dir": str(ctx.settings.data_dir)},
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "status": catalog_status(session, recent_runs=RECENT_RUNS),
                "failures": failure_examples(session, examples=FAILURE_EXAMPLES),
                "gone": gone_videos(session, limit=LISTED_ROWS),
                "releases": recent_releases(session, limit=LISTED_ROWS),
            }
    except SQLAlchemyError as exc:
        raise CatalogUnavailable(f"reading the catalog failed: {db.database_error(exc)}", where) from None


# --- the page: server-rendered, self-contained (inline CSS, no script, relative links only) -----------------------

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
"""
DECISION_STATUSES = ("passed", "failed", "undecided")


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
        _card("scores", status["scores"]),
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


def _runs(runs: list[dict[str, Any]]) -> str:
    def airflow(run: dict[str, Any]) -> str:
        if not run["dag_id"]:
            return '<span class="meta">outside Airflow</span>'
        mapped = f" [{_e(run['map_index'])}]" if run["map_index"] is not None and run["map_index"] >= 0 else ""
        return " / ".join(_code(run[key]) for key in ("dag_id", "dag_run_id", "task_id")) + mapped

    rows = [[_when(r["started_at"]), _e(r["stage"]), _e(r["status"]), _pairs(r["counts"]), airflow(r), _code(r["id"])] for r in runs]
    headers = ["started (UTC)", "stage", "status", "counts", "Airflow dag / run / task", "run"]
    return _table(headers, rows, "no runs yet")


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
        '<a href="./">refresh</a> &middot; <a href="api/status">JSON</a></p>'
    )
    return _page("talkvid catalog", "".join([
        header,
        "<h2>Counts per stage</h2>", _stage_cards(status),
        "<h2>Failures</h2>", _failures(report["failures"]),
        "<h2>Decisions per profile</h2>", _decisions(status["decisions"]),
        "<h2>Recent runs</h2>", _runs(status["runs"]),
        "<h2>Releases</h2>", _releases(report["releases"]),
        f"<h2>Videos gone since crawl ({_e(status['videos_gone'])})</h2>", _gone(report["gone"], status["videos_gone"]),
    ]))  # fmt: skip


def render_unavailable(problem: CatalogUnavailable) -> str:
    where = f'<p class="meta">catalog {_code(problem.catalog)}</p>' if problem.catalog else ""
    hint = '<p class="meta">Set TALKVID_DATABASE_URL (or TALKVID_DATA_DIR) for the Airflow API server, then <a href="./">reload</a>.</p>'
    body = f"<h1>The talkvid catalog is unavailable</h1>{where}<p>{_e(problem.reason)}</p>{hint}"
    return _page("talkvid catalog unavailable", body)


# --- the app -------------------------------------------------------------------------------------------------------


def release_file(release_id: str, path: str) -> Path:
    """A file the release's manifest lists, on this host, inside the release directory."""
    from talkvid_ops.catalog.models import Release

    ctx = open_catalog()
    with ctx.sessions() as session:
        release = session.get(Release, release_id)
    if release is None:
        raise HTTPException(404, f"no release {release_id}")
    if path not in release.files:
        raise HTTPException(404, f"release {release.name} has no file {path}")
    root = Path(release.out_dir).resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        raise HTTPException(404, f"{path} of release {release.name} is not on this host (under {release.out_dir})")
    return file


def create_app(authenticate: Callable[..., Any] | None = None) -> FastAPI:
    """The dashboard app; `authenticate` is a FastAPI dependency that every request must pass."""
    app = FastAPI(
        title="talkvid catalog",
        dependencies=[Depends(authenticate)] if authenticate else [],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(CatalogUnavailable)
    def unavailable(request: Request, problem: CatalogUnavailable):
        if request.url.path.rstrip("/").endswith("/api/status"):
            body = {"error": "catalog unavailable", "reason": problem.reason, "catalog": problem.catalog}
            return JSONResponse(body, 503)
        return HTMLResponse(render_unavailable(problem), 503)

    # plain `def` endpoints: FastAPI runs them in its threadpool, off the API server's event loop
    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return render_dashboard(catalog_report())

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return catalog_report()

    @app.get("/releases/{release_id}/files/{path:path}")
    def release_files(release_id: str, path: str) -> FileResponse:
        return FileResponse(release_file(release_id, path))

    return app


async def airflow_login(request: Request) -> None:
    """Who is calling, as Airflow's API decides it (bearer token, else the UI's session cookie); 401/403 otherwise."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    await get_user(request, None, await bearer_scheme(request))


class TalkvidCatalogPlugin(AirflowPlugin):
    name = "talkvid_catalog"
    fastapi_apps = [
        {"app": create_app(authenticate=airflow_login), "url_prefix": URL_PREFIX, "name": "talkvid catalog"},
    ]
    # href and url_route are relative to the UI's base URL (no leading slash), so a [api] base_url path still works
    external_views = [
        {
            "name": "Catalog",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "talkvid-catalog",
            "destination": "nav",
            "category": "browse",
        }
    ]
