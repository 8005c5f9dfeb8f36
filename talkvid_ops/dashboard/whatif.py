"""The what-if view of the catalog page (`whatif`): move one threshold of a stored profile and see, from the stored
scores and decisions in SQL and before any DAG run, the clips and hours that would enter or leave the passed set;
then trigger `talkvid_curate` with the conf that makes exactly that profile.

- **The move** is a threshold override as the curate form takes it: a criterion, optionally the backend whose rule
  it bounds, and a new min and/or max (a blank bound is kept). `Profile.with_thresholds` applies it to the stored
  profile, and the rules whose bounds changed are what `calibration.what_if` evaluates.
- **The conf** names the shipped profile the stored one derives from and its overrides plus this one. It is offered
  only when the DAG would rebuild the stored profile from it (same content hash): a profile decided from a YAML
  file, or a shipped profile changed since, cannot be reproduced by a conf.
- **The trigger** is the host's: `trigger` is a FastAPI dependency returning a function of the conf that starts a
  run and returns `TriggeredRun` (the Airflow plugin builds it with Airflow's own trigger code; the library knows no
  Airflow). The conf is checked first with the curate DAG's own validation, which names the field in error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse

from talkvid_ops.dashboard.page import _code, _e, _page, _table
from talkvid_ops.errors import TalkvidError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from talkvid_ops.curate.profiles import Profile

CUSTOM_SUFFIX = ".custom"  # the name `with_thresholds` gives a shipped profile with overrides, as the curate DAG runs it
LISTED_CLIPS = 50  # clip links shown per side; the counts and hours cover all


@dataclass(frozen=True)
class TriggeredRun:
    run_id: str
    url: str  # where the host shows the run (relative to the what-if page)


class TriggerRefused(TalkvidError):
    """The host refused to start the run (its reason says why)."""


Trigger = Callable[[dict[str, Any]], TriggeredRun]


@dataclass(frozen=True)
class Move:
    profile: str  # stored, name@hash
    criterion: str
    backend: str | None = None
    lo: float | None = None
    hi: float | None = None

    @property
    def has_bound(self) -> bool:
        return self.lo is not None or self.hi is not None

    def override(self) -> dict[str, Any]:
        if not self.has_bound:
            raise TalkvidError("min, max: give a new min, a new max or both")
        bounds = {"backend": self.backend, "min": self.lo, "max": self.hi}
        return {key: value for key, value in bounds.items() if value is not None}


def curate_conf(stored: Profile, move: Move) -> dict[str, Any]:
    """The talkvid_curate conf that makes the stored profile with the move applied: its shipped base profile and
    overrides, this one merged into its criterion's; TalkvidError when a conf cannot reproduce the stored profile."""
    from talkvid_ops.curate.profiles import shipped_profiles
    from talkvid_ops.stages import resolve_profile

    overrides = {o["criterion"]: {k: v for k, v in o.items() if k != "criterion"} for o in stored.overrides or []}
    base = stored.name.removesuffix(CUSTOM_SUFFIX) if overrides else stored.name
    if base not in shipped_profiles():
        raise TalkvidError(f"{stored.name} is not a shipped profile (nor one with overrides): the curate form cannot name it")
    if resolve_profile(base, overrides or None).content_hash != stored.content_hash:
        raise TalkvidError(f"the shipped profile {base} changed since {stored.name}@{stored.content_hash} was decided: a conf would make another profile")
    override = move.override()
    previous = overrides.get(move.criterion, {})
    if previous.get("backend") != move.backend and previous:
        raise TalkvidError(f"{move.criterion} is already overridden for backend {previous.get('backend') or 'all'}: move that one")
    thresholds = {**overrides, move.criterion: {**previous, **override}}
    return {"profile": base, "thresholds": thresholds}


def conf_errors(conf: dict[str, Any]) -> list[str]:
    """Every error of a curate conf, each naming its field, by the curate DAG's own validation (its form's JSON
    Schemas, then the profile and the overrides against it)."""
    from talkvid_ops.runners.dag_tasks import curate_params
    from talkvid_ops.runners.inprocess import curate_conf_errors

    return curate_conf_errors(conf, curate_params())


def what_if_move(session: Session, move: Move) -> dict[str, Any]:
    """The effect of the move on the stored decisions of its profile, the profile it makes and the conf that
    triggers it (or why there is none). TalkvidError names what is wrong with the move itself."""
    from talkvid_ops.curate.decide import profile_row_id, stored_or_loaded
    from talkvid_ops.curate.validation.calibration import what_if

    stored = stored_or_loaded(session, move.profile)
    profile_id = profile_row_id(session, stored)
    if move.criterion not in stored.criteria:
        raise TalkvidError(f"criterion: {stored.name} has no criterion {move.criterion!r} ({', '.join(stored.criteria)})")
    moved = stored.with_thresholds({move.criterion: move.override()}, name=stored.name)
    old_rules, new_rules = stored.criteria[move.criterion].rules, moved.criteria[move.criterion].rules
    changed = {k: (new.min, new.max) for k, (old, new) in enumerate(zip(old_rules, new_rules)) if (old.min, old.max) != (new.min, new.max)}
    effect = what_if(session, profile_id, move.criterion, old_rules, changed)
    if effect is None:
        raise TalkvidError(f"profile: the catalog holds no decision of {move.profile}; run `talkvid decide` with it first")
    result: dict[str, Any] = {
        "profile": f"{stored.name}@{stored.content_hash}",
        "rules": [{"backend": r.backend, "metric": r.metric, "min": r.min, "max": r.max, "moved": k in changed} for k, r in enumerate(new_rules)],
        "was": [{"min": r.min, "max": r.max} for r in old_rules],
        **effect,
    }
    now = effect["passed_now"]
    result["passed_after"] = {
        "clips": now["clips"] + effect["enter"]["clips"] - effect["leave"]["clips"],
        "hours": now["hours"] + effect["enter"]["hours"] - effect["leave"]["hours"],
    }
    try:
        result["conf"] = curate_conf(stored, move)
    except TalkvidError as exc:
        result["conf"], result["no_conf"] = None, str(exc)
    return result


def profile_choices(session: Session) -> list[dict[str, Any]]:
    """The stored profiles (name@hash) with their criteria and each criterion's backends, for the form."""
    from sqlalchemy import select

    from talkvid_ops.catalog.models import Profile as ProfileRow

    rows = session.execute(select(ProfileRow.name, ProfileRow.content_hash, ProfileRow.body).order_by(ProfileRow.name, ProfileRow.content_hash))
    return [
        {"ref": f"{name}@{content_hash}", "criteria": {c: [r["backend"] for r in spec["rules"]] for c, spec in body["criteria"].items()}}
        for name, content_hash, body in rows
    ]


def move_query(profile: Profile, criterion: str, judged_backend: str) -> str:
    """The what-if page's query for moving `criterion` of a stored profile, the bound a clip failed
    (judged by a score of `judged_backend`): the backend is named only where the criterion's rules need it."""
    from urllib.parse import urlencode

    rules = profile.criteria[criterion].rules
    needs_backend = len({r.metric for r in rules}) > 1 and any(r.backend == judged_backend for r in rules)
    fields = {"profile": f"{profile.name}@{profile.content_hash}", "criterion": criterion, **({"backend": judged_backend} if needs_backend else {})}
    return "whatif?" + urlencode(fields)


# --- the page ---------------------------------------------------------------------------------------------------------


def _hours(hours: float) -> str:
    """Hours as a curator reads them: minutes below one hour."""
    return f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def _bound(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _form(choices: list[dict[str, Any]], move: Move | None) -> str:
    profiles = "".join(f'<option value="{_e(c["ref"])}"{" selected" if move and move.profile == c["ref"] else ""}>{_e(c["ref"])}</option>' for c in choices)
    criteria = sorted({criterion for c in choices for criterion in c["criteria"]})
    backends = sorted({b for c in choices for rules in c["criteria"].values() for b in rules})
    datalist = "".join(f'<option value="{_e(x)}">' for x in criteria)
    backend_list = "".join(f'<option value="{_e(x)}">' for x in backends)
    return (
        '<form method="get" action="whatif" id="move">'
        f'<label>profile <select name="profile">{profiles}</select></label> '
        f'<label>criterion <input name="criterion" list="criteria" required value="{_e(move.criterion if move else "")}"></label>'
        f'<datalist id="criteria">{datalist}</datalist> '
        f'<label>backend <input name="backend" list="backends" size="10" value="{_e(move.backend if move else "")}"></label>'
        f'<datalist id="backends">{backend_list}</datalist> '
        f'<label>min <input name="min" size="8" value="{_e(_number(move.lo) if move else "")}"></label> '
        f'<label>max <input name="max" size="8" value="{_e(_number(move.hi) if move else "")}"></label> '
        '<button type="submit">What if?</button></form>'
        '<p class="meta">A blank bound is kept; backend only where a criterion\'s rules measure on different scales.</p>'
    )


def _clip_links(ids: list[str]) -> str:
    shown = ", ".join(f'<a href="clips/{_e(i)}">{_e(i)}</a>' for i in ids[:LISTED_CLIPS])
    more = f" and {len(ids) - LISTED_CLIPS} more" if len(ids) > LISTED_CLIPS else ""
    return shown + more or '<span class="meta">none</span>'


def _hidden(move: Move) -> str:
    fields = {"profile": move.profile, "criterion": move.criterion, "backend": move.backend or "", "min": _number(move.lo), "max": _number(move.hi)}
    return "".join(f'<input type="hidden" name="{k}" value="{_e(v)}">' for k, v in fields.items())


def _result(result: dict[str, Any], move: Move, can_trigger: bool) -> str:
    rules = [
        [_e(r["backend"]), _code(r["metric"]), f"{_bound(was['min'])} .. {_bound(was['max'])}",
         f"<b>{_bound(r['min'])} .. {_bound(r['max'])}</b>" if r["moved"] else "unchanged"]
        for r, was in zip(result["rules"], result["was"])
    ]  # fmt: skip
    figures = [
        ["passed now", f'<td class="num" id="passed-now">{result["passed_now"]["clips"]}</td>', _hours(result["passed_now"]["hours"])],
        ["enter", f'<td class="num" id="enter">{result["enter"]["clips"]}</td>', _hours(result["enter"]["hours"])],
        ["leave", f'<td class="num" id="leave">{result["leave"]["clips"]}</td>', _hours(result["leave"]["hours"])],
        ["passed after", f'<td class="num" id="passed-after">{result["passed_after"]["clips"]}</td>', _hours(result["passed_after"]["hours"])],
    ]
    out = [
        f"<h2>{_e(move.criterion)} of {_code(result['profile'])}</h2>",
        _table(["backend", "metric", "bounds now", "bounds after"], rules, ""),
        _table(["", "clips", "duration"], figures, ""),
        f'<p>enter: <span id="enter-clips">{_clip_links(result["enter"]["clip_ids"])}</span></p>',
        f'<p>leave: <span id="leave-clips">{_clip_links(result["leave"]["clip_ids"])}</span></p>',
    ]
    if result["conf"] is None:
        out.append(f'<p class="meta" id="no-conf">No curate run can make this profile: {_e(result["no_conf"])}</p>')
        return "".join(out)
    out.append(f'<h3>talkvid_curate conf</h3><pre id="conf">{_e(json.dumps(result["conf"], indent=1))}</pre>')
    if can_trigger:
        out.append(
            f'<form method="post" action="whatif">{_hidden(move)}<button type="submit" id="trigger">Trigger talkvid_curate with this conf</button></form>'
        )
    return "".join(out)


def render_what_if(
    choices: list[dict[str, Any]], move: Move | None, result: dict[str, Any] | None, error: str | None, can_trigger: bool, notice: str = ""
) -> str:
    header = '<h1>What if?</h1><p class="meta"><a href="./">catalog</a> &middot; from the stored scores and decisions; nothing is run until you trigger</p>'
    body = [header, notice, _form(choices, move)]
    if not choices:
        body.append('<p class="empty">No stored profile yet: run <code>talkvid decide</code> (or talkvid_curate) first.</p>')
    if error:
        body.append(f'<p class="error" id="error"><strong>{_e(error)}</strong></p>')
    if result is not None and move is not None:
        body.append(_result(result, move, can_trigger))
    return _page("what if", "".join(body))


def render_triggered(run: TriggeredRun, conf: dict[str, Any]) -> str:
    return (
        f'<p id="triggered">Triggered talkvid_curate run <a target="_top" href="{_e(run.url)}" id="run-link">{_e(run.run_id)}</a> '
        f"with conf <code>{_e(json.dumps(conf))}</code>.</p>"
    )


def _parse_bound(name: str, text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise TalkvidError(f"{name}: {text!r} is not a number") from None


def parse_move(profile: str | None, criterion: str | None, backend: str | None, lo: str | None, hi: str | None) -> Move | None:
    """The move a form asks for; None when nothing was asked yet."""
    if not profile and not criterion:
        return None
    if not profile or not criterion:
        raise TalkvidError("profile, criterion: both are needed")
    return Move(profile, criterion.strip(), (backend or "").strip() or None, _parse_bound("min", lo), _parse_bound("max", hi))


def what_if_router(catalog: Callable[..., Any], operate: Callable[..., None], trigger: Callable[..., Trigger] | None) -> APIRouter:
    """`whatif` (GET: the form and a move's effect; POST: trigger the move's conf). `catalog` returns the request's
    Context; `operate` is the guard of the operate capability; `trigger` (None: no button) returns the host's trigger."""
    router = APIRouter()
    CatalogDep = Depends(catalog)

    def page(ctx: Any, move: Move | None, error: str | None = None, notice: str = "") -> str:
        with ctx.sessions() as session:
            choices = profile_choices(session)
            result = None
            if move is not None and move.has_bound and error is None:  # a move without a bound only fills the form
                try:
                    result = what_if_move(session, move)
                except TalkvidError as exc:
                    error = str(exc)
        return render_what_if(choices, move, result, error, trigger is not None, notice)

    # plain `def` endpoints: FastAPI runs them in its threadpool, off the server's event loop
    @router.get("/whatif", response_class=HTMLResponse)
    def what_if_page(
        profile: str | None = None, criterion: str | None = None, backend: str | None = None, min: str | None = None, max: str | None = None, ctx=CatalogDep
    ) -> str:
        try:
            move = parse_move(profile, criterion, backend, min, max)
        except TalkvidError as exc:
            return page(ctx, None, str(exc))
        return page(ctx, move)

    if trigger is None:
        return router
    TriggerDep = Depends(trigger)

    @router.post("/whatif", response_class=HTMLResponse, dependencies=[Depends(operate)])
    def trigger_run(
        profile: Annotated[str, Form()],
        criterion: Annotated[str, Form()],
        backend: Annotated[str, Form()] = "",
        min: Annotated[str, Form()] = "",
        max: Annotated[str, Form()] = "",
        ctx=CatalogDep,
        start: Trigger = TriggerDep,
    ) -> HTMLResponse:
        try:
            move = parse_move(profile, criterion, backend, min, max)
            with ctx.sessions() as session:
                from talkvid_ops.curate.decide import stored_or_loaded

                conf = curate_conf(stored_or_loaded(session, move.profile), move)
        except TalkvidError as exc:
            return HTMLResponse(page(ctx, None, f"not triggered: {exc}"), 400)
        errors = conf_errors(conf)
        if errors:
            return HTMLResponse(page(ctx, move, "not triggered, the conf has errors: " + "; ".join(errors)), 400)
        try:
            run = start(conf)
        except TriggerRefused as exc:
            return HTMLResponse(page(ctx, move, f"not triggered: {exc}"), 400)
        return HTMLResponse(page(ctx, move, notice=render_triggered(run, conf)))

    return router
