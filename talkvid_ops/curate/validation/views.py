"""The validation pages of the catalog page app: annotate a set blind, and see its agreement figures.

`validation_router(catalog, annotator)` is a FastAPI router for the page app to include; both arguments are FastAPI
dependencies: `catalog` returns the request's `Context` (the page app's catalog check), `annotator` the name of the
person asking (in Airflow, the user name its auth manager gives; in tests, whatever the test injects). Pages are
server-rendered and self-contained (inline CSS, no script) and link relatively, so they work under any mount point:

- `validation/`: every set with your own progress;
- `validation/set/{id}/annotate` (`?item=` to revisit one): the next clip you have not labelled, played from its
  source file on its time range (a media fragment `#t=start,end` on `media/{item}`), with accept / reject buttons
  that POST back here. It shows no score, no decision and no one else's label: only yours;
- `validation/set/{id}/media/{item}`: the clip's source video file (range requests), for the player;
- `validation/set/{id}/stats` and `stats.json`: the agreement figures (`agreement` module).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from sqlalchemy import select

from talkvid_ops.catalog.models import Clip, ValidationItem, ValidationSet, Video
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.config import display_path
from talkvid_ops.context import Context
from talkvid_ops.curate.validation.agreement import set_statistics, statistics_lines
from talkvid_ops.curate.validation.annotations import ORIGIN_PAGE, BlindItem, blind_items, list_sets, parse_verdict, record

STYLE = """
:root { color-scheme: light dark; --muted: #637381; --line: #d9dee3; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 16px 20px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 8px; }
.meta { color: var(--muted); } table { border-collapse: collapse; } th { text-align: left; color: var(--muted); }
th, td { border-bottom: 1px solid var(--line); padding: 4px 12px 4px 0; } td.num { text-align: right; }
video { max-width: 100%; background: #000; } form { margin: 12px 0; }
button { font-size: 16px; padding: 6px 18px; margin-right: 10px; }
#accept { background: #2e7d32; color: #fff; border: 0; } #reject { background: #c62828; color: #fff; border: 0; }
pre { font-size: 13px; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f"<body>{body}</body></html>")  # fmt: skip


def _set(session, set_id: str) -> ValidationSet:
    found = session.get(ValidationSet, set_id)
    if found is None:
        raise HTTPException(404, f"no validation set {set_id}")
    return found


def render_index(sets: list[tuple[ValidationSet, list[BlindItem]]], annotator: str) -> str:
    rows = "".join(
        f"<tr><td>{_e(s.name)}</td><td>{_e(s.criterion)} / {_e(s.backend)}</td><td class=num>{len(items)}</td>"
        f"<td class=num>{sum(1 for i in items if i.own_verdict)}</td>"
        f'<td><a href="set/{quote(s.id)}/annotate">annotate</a> &middot; <a href="set/{quote(s.id)}/stats">statistics</a></td></tr>'
        for s, items in sets
    )
    table = (f"<table><thead><tr><th>set</th><th>criterion / backend</th><th>clips</th><th>labelled by you</th><th></th></tr></thead>"
             f"<tbody>{rows}</tbody></table>") if sets else '<p class="meta">No validation set yet: <code>talkvid validate draw</code> makes one.</p>'  # fmt: skip
    return _page("validation sets", f'<h1>Validation sets</h1><p class="meta">you: {_e(annotator)}</p>{table}')


def render_annotate(validation_set: ValidationSet, description: str, items: list[BlindItem], current: BlindItem | None, annotator: str) -> str:
    done = sum(1 for i in items if i.own_verdict)
    header = (f"<h1>Validation: {_e(validation_set.name)}</h1>"
              f'<p class="meta">you: {_e(annotator)} &middot; <span id="progress">{done} of {len(items)}</span> labelled by you &middot; '
              '<a href="stats">statistics</a> &middot; <a href="../../">all sets</a></p>'
              f"<p>Judge the clip on <b>{_e(validation_set.criterion)}</b>{': ' + _e(description) if description else ''}. "
              "Is it acceptable for a talking-head dataset?</p>")  # fmt: skip
    if current is None:
        body = '<p id="done">You have labelled every clip of this set.</p>'
    else:
        source = f"media/{quote(current.item_id)}#t={current.start_time:.3f},{current.end_time:.3f}"
        own = f'<p id="own">your label: {_e(current.own_verdict)}</p>' if current.own_verdict else ""
        body = (f'<video id="clip" controls preload="metadata" width="640" src="{_e(source)}"></video>'
                f'<p class="meta">clip {current.position} of {len(items)} &middot; {current.start_time:.2f}-{current.end_time:.2f} s of its source video</p>'
                f'{own}<form method="post" action="annotate"><input type="hidden" name="item" value="{_e(current.item_id)}">'
                '<button type="submit" id="accept" name="verdict" value="accept">Accept</button>'
                '<button type="submit" id="reject" name="verdict" value="reject">Reject</button></form>')  # fmt: skip
    listing = "".join(
        f'<li><a href="annotate?item={quote(i.item_id)}">clip {i.position}</a> '
        f'<span class="label">{_e(i.own_verdict) if i.own_verdict else "not labelled"}</span></li>'
        for i in items
    )
    return _page(f"validation {validation_set.name}", f'{header}{body}<h2>Your labels</h2><ol id="items">{listing}</ol>')


def _interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _value(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.3f}"


def render_stats(stats: dict[str, Any]) -> str:
    f = stats["filter"]
    figures = "".join(
        f'<tr id="{key}"><td>{label}</td><td class=num>{_value(f[key])}</td><td>{_interval(f.get(key + "_ci"))}</td></tr>'
        for key, label in (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
    )
    confusion = "".join(f'<td class=num id="{k}">{f[k]}</td>' for k in ("n", "tp", "fp", "fn", "tn"))
    kappas = "".join(
        f"<tr><td>{_e(p['annotators'][0])} / {_e(p['annotators'][1])}</td><td class=num>{p['n']}</td>"
        f'<td class="num kappa">{_value(p["kappa"])}</td><td>{_interval(p["kappa_ci"])}</td><td class=num>{_value(p["observed"])}</td></tr>'
        for p in stats["kappa"]
    )
    kappa_table = (f'<table id="kappa"><thead><tr><th>annotators</th><th>clips</th><th>kappa</th><th>95 % CI</th><th>observed agreement</th></tr></thead>'
                   f"<tbody>{kappas}</tbody></table>") if kappas else '<p class="meta" id="kappa">One annotator so far: the filter\'s agreement only.</p>'  # fmt: skip
    body = (f"<h1>Statistics: {_e(stats['name'])}</h1>"
            f'<p class="meta"><a href="annotate">annotate</a> &middot; <a href="../../">all sets</a> &middot; <a href="stats.json">JSON</a></p>'
            f"<pre>{_e(statistics_lines(stats)[0])}</pre>"
            f'<p>clips {stats["items"]}: labelled <span id="labelled">{stats["labelled"]}</span>, ties <span id="ties">{stats["ties"]}</span>, '
            f'unlabelled {stats["unlabelled"]}; annotators {len(stats["annotators"])}</p>'
            "<h2>Filter against the majority label</h2>"
            f"<table><thead><tr><th>n</th><th>TP</th><th>FP</th><th>FN</th><th>TN</th></tr></thead><tbody><tr>{confusion}</tr></tbody></table>"
            f'<table id="figures"><thead><tr><th>figure</th><th>value</th><th>95 % Wilson CI</th></tr></thead><tbody>{figures}</tbody></table>'
            f"<h2>Agreement between annotators (Cohen's kappa)</h2>{kappa_table}")  # fmt: skip
    return _page(f"statistics {stats['name']}", body)


def validation_router(catalog: Callable[..., Context], annotator: Callable[..., str], prefix: str = "/validation") -> APIRouter:
    """The validation pages (see the module) under `validation/`; `catalog` and `annotator` are dependencies."""
    router = APIRouter(prefix=prefix)
    # dependencies as defaults: the module's postponed annotations could not see aliases local to this function
    CatalogDep, AnnotatorDep = Depends(catalog), Depends(annotator)

    # plain `def` endpoints: FastAPI runs them in its threadpool, off the server's event loop
    @router.get("/", response_class=HTMLResponse)
    def index(ctx: Context = CatalogDep, who: str = AnnotatorDep) -> str:
        with ctx.sessions() as session:
            sets = [(s, blind_items(session, s.id, who)) for s in list_sets(session)]
        return render_index(sets, who)

    @router.get("/set/{set_id}/annotate", response_class=HTMLResponse)
    def annotate(set_id: str, item: str | None = None, ctx: Context = CatalogDep, who: str = AnnotatorDep) -> str:
        with ctx.sessions() as session:
            validation_set = _set(session, set_id)
            profile = session.get(ProfileRow, validation_set.profile_id)
            items = blind_items(session, set_id, who)
        description = profile.body.get("criteria", {}).get(validation_set.criterion, {}).get("description", "")
        if item is not None:
            current = next((i for i in items if i.item_id == item), None)
            if current is None:
                raise HTTPException(404, f"set {validation_set.name} has no item {item}")
        else:
            current = next((i for i in items if i.own_verdict is None), None)
        return render_annotate(validation_set, description, items, current, who)

    @router.post("/set/{set_id}/annotate")
    def label(
        set_id: str, item: Annotated[str, Form()], verdict: Annotated[str, Form()], ctx: Context = CatalogDep, who: str = AnnotatorDep
    ) -> RedirectResponse:
        try:
            parsed = parse_verdict(verdict)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        with ctx.sessions() as session:
            _set(session, set_id)
            found = session.get(ValidationItem, item)
            if found is None or found.set_id != set_id:
                raise HTTPException(404, f"no item {item} in this set")
            record(session, item, who, parsed, ORIGIN_PAGE)
            session.commit()
        return RedirectResponse("annotate", status_code=303)  # relative: the next clip, under any mount point

    @router.get("/set/{set_id}/media/{item_id}")
    def media(set_id: str, item_id: str, ctx: Context = CatalogDep, who: str = AnnotatorDep) -> FileResponse:
        with ctx.sessions() as session:
            path = session.scalar(source_of(item_id).where(ValidationItem.set_id == set_id))  # only files of clips in this set
        if path is None:
            raise HTTPException(404, f"no item {item_id} in this set")
        return FileResponse(source_video_file(ctx, path, f"item {item_id}"))

    @router.get("/set/{set_id}/stats", response_class=HTMLResponse)
    def stats_page(set_id: str, ctx: Context = CatalogDep, who: str = AnnotatorDep) -> str:
        with ctx.sessions() as session:
            return render_stats(set_statistics(session, _set(session, set_id)))

    @router.get("/set/{set_id}/stats.json")
    def stats_json(set_id: str, ctx: Context = CatalogDep, who: str = AnnotatorDep) -> dict[str, Any]:
        with ctx.sessions() as session:
            return set_statistics(session, _set(session, set_id))

    return router


def source_of(item_id: str):
    """The storage path of a validation item's source video."""
    return (
        select(Video.storage_path)
        .join(Clip, Clip.video_id == Video.id)
        .join(ValidationItem, ValidationItem.clip_id == Clip.id)
        .where(ValidationItem.id == item_id)
    )


def source_video_file(ctx: Context, stored_path: str | None, what: str) -> Path:
    """The source video file of `what` on this host, for a player (served as a FileResponse, which answers HTTP range
    requests: the browser fetches only the part around the clip it plays); 404 when it is not here."""
    file = ctx.settings.media_path(stored_path)
    if file is None or not file.is_file():
        raise HTTPException(404, f"the source file of {what} is not on this host ({display_path(file) if file else 'never downloaded'})")
    return file
