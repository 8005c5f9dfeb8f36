"""Apply a threshold profile to stored scores: set-based SQL, no Python loop over clips, no model call.

For every clip and criterion, the first rule (in the profile's order) whose backend has a score for the clip
applies (`backend: any` matches any backend; among several, the latest score). A clip fails when any applied
rule's bounds are violated, is undecided when no failure was found but some criterion had no usable score, and
passes otherwise. Each decision lists the criteria it could not evaluate, and each failure records the criterion,
metric, the backend whose score was judged, its value and the bounds. Deciding a profile again replaces its
decisions; a profile's row is keyed by its name and content hash, so changed thresholds are a new version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, bindparam, delete, func, select, text
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Decision, DecisionFailure, utcnow
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.context import Context
from talkvid_ops.curate.profiles import ANY_BACKEND, Profile, as_profile, validate_profile
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id

STAGE = "decide"
STATUS_PARAMS = {status.value: status.value for status in DecisionStatus}  # the statuses DECISIONS_SQL writes, bound by name


def store_profile(session: Session, profile: Profile) -> str:
    """The catalog row of this exact profile content (created on first use); returns its id."""
    profile_id = make_id("profile", profile.name, profile.content_hash)
    upsert(
        session,
        ProfileRow,
        [dict(id=profile_id, name=profile.name, content_hash=profile.content_hash, body=profile.body())],
        ["name", "content_hash"],
        update=[],
    )
    return profile_id


def stored_or_loaded(session: Session, profile: Profile | str | Path) -> Profile:
    """A profile as is, a stored one by `name@hash` (as `decide` prints it and the `profile` table holds it), or a
    shipped name or YAML file."""
    if isinstance(profile, str) and "@" in profile:
        name, _, content_hash = profile.partition("@")
        body = session.scalar(select(ProfileRow.body).where(ProfileRow.name == name, ProfileRow.content_hash == content_hash))
        if body is None:
            raise TalkvidError(f"no stored profile {profile}: `talkvid profiles list --stored` lists them")
        return validate_profile(body, source=profile)
    return as_profile(profile)


def stored_profiles(session: Session) -> list[dict[str, Any]]:
    """Every profile version the catalog holds, newest first."""
    rows = session.scalars(select(ProfileRow).order_by(ProfileRow.created_at.desc(), ProfileRow.name)).all()
    return [
        {
            "name": r.name,
            "content_hash": r.content_hash,
            "created_at": r.created_at,
            "description": r.body.get("description", ""),
            "overrides": r.body.get("overrides", []),
        }
        for r in rows
    ]


def profile_row_id(session: Session, profile: Profile | str | Path) -> str:
    """The catalog row of a profile's exact content: decisions belong to a name and content hash."""
    profile = stored_or_loaded(session, profile)
    row_id = session.scalar(select(ProfileRow.id).where(ProfileRow.name == profile.name, ProfileRow.content_hash == profile.content_hash))
    if row_id is None:
        raise TalkvidError(
            f"no decisions for profile {profile.name} (content hash {profile.content_hash}): run `talkvid decide --profile {profile.name}` first"
        )
    return row_id


def passed_clip_ids(session: Session, profile_id: str) -> list[str]:
    """The clips a profile's decisions passed, in id order."""
    return sorted(session.scalars(select(Decision.clip_id).where(Decision.profile_id == profile_id, Decision.status == DecisionStatus.PASSED)))


def _values(rows: list[str]) -> str:
    return ",\n".join(rows)


def _rules(profile: Profile) -> tuple[str, str, dict[str, Any]]:
    """The profile as VALUES lists with bound parameters: rules (criterion, priority, backend, metric, lo, hi) and
    criteria (criterion)."""
    rules, criteria, params = [], [], {}
    for k, (criterion, spec) in enumerate(profile.criteria.items()):
        criteria.append(f"(:c{k})")
        params[f"c{k}"] = criterion
        for priority, rule in enumerate(spec.rules):
            n = len(rules)
            rules.append(f"(:c{k}, {priority}, :b{n}, :m{n}, CAST(:lo{n} AS DOUBLE PRECISION), CAST(:hi{n} AS DOUBLE PRECISION))")
            params.update({f"b{n}": rule.backend, f"m{n}": rule.metric, f"lo{n}": rule.min, f"hi{n}": rule.max})
    return _values(rules), _values(criteria), params


# Per clip and criterion, the score that applies (the first rule, in profile order, with a score; for
# `backend: any` the latest) and whether it is out of bounds. Clips or criteria without a score have no row.
APPLIED_SQL = """
CREATE TEMPORARY TABLE decide_applied AS
WITH rules(criterion, priority, backend, metric, lo, hi) AS (VALUES {rules}),
candidate AS (
    SELECT s.clip_id, r.criterion, r.metric, s.backend, s.value, r.lo, r.hi,
           ROW_NUMBER() OVER (PARTITION BY s.clip_id, r.criterion ORDER BY r.priority, s.created_at DESC, s.backend) AS rn
    FROM rules r
    JOIN score s ON s.metric = r.metric AND (r.backend = :any_backend OR s.backend = r.backend)
    WHERE s.value IS NOT NULL
)
SELECT clip_id, criterion, metric, backend, value, lo, hi,
       CASE WHEN (lo IS NOT NULL AND value < lo) OR (hi IS NOT NULL AND value > hi) THEN 1 ELSE 0 END AS failing
FROM candidate
WHERE rn = 1
"""

# One decision per clip; the list of criteria without a score is only worked out for clips that have one missing.
DECISIONS_SQL = """
WITH criteria(criterion) AS (VALUES {criteria})
INSERT INTO decision (id, clip_id, profile_id, status, missing, run_id, decided_at)
SELECT :profile_id || c.id, c.id, :profile_id,
       CASE WHEN COALESCE(a.failing, 0) > 0 THEN :failed
            WHEN COALESCE(a.evaluated, 0) < :criteria_count THEN :undecided
            ELSE :passed END,
       CASE WHEN COALESCE(a.evaluated, 0) < :criteria_count THEN (
                SELECT {missing} FROM criteria k
                WHERE NOT EXISTS (SELECT 1 FROM decide_applied m WHERE m.clip_id = c.id AND m.criterion = k.criterion))
            ELSE {empty} END,
       :run_id, :decided_at
FROM clip c
LEFT JOIN (SELECT clip_id, SUM(failing) AS failing, COUNT(*) AS evaluated FROM decide_applied GROUP BY clip_id) a
       ON a.clip_id = c.id
"""

# JSON list of the missing criteria, and the empty list, per dialect.
MISSING_JSON = {
    "sqlite": ("json_group_array(k.criterion)", "'[]'"),
    "postgresql": ("json_agg(k.criterion ORDER BY k.criterion)", "CAST('[]' AS JSON)"),
}

FAILURES_SQL = """
INSERT INTO decision_failure (decision_id, criterion, metric, backend, value, min_value, max_value)
SELECT :profile_id || clip_id, criterion, metric, backend, value, lo, hi
FROM decide_applied
WHERE failing = 1
"""


def decide(ctx: Context, profile: Profile | str | Path) -> dict[str, Any]:
    """Decide every clip of the catalog under `profile`; returns counts per status."""
    profile = as_profile(profile)
    with ctx.run(STAGE, {"profile": profile.name, "content_hash": profile.content_hash}) as run:
        with ctx.sessions() as session:
            profile_id = store_profile(session, profile)
            dialect = session.get_bind().dialect.name
            if dialect not in MISSING_JSON:  # pragma: no cover - we support the two above
                raise NotImplementedError(f"decide is not implemented for {dialect}")
            session.execute(delete(DecisionFailure).where(DecisionFailure.decision_id.in_(select(Decision.id).where(Decision.profile_id == profile_id))))
            session.execute(delete(Decision).where(Decision.profile_id == profile_id))
            rules, criteria, params = _rules(profile)
            missing, empty = MISSING_JSON[dialect]
            if dialect == "postgresql":
                # the window over every score row sorts in memory instead of spilling to disk (this transaction only)
                session.execute(text("SET LOCAL work_mem = '256MB'"))
            session.execute(text("DROP TABLE IF EXISTS decide_applied"))
            session.execute(text(APPLIED_SQL.format(rules=rules)), {**params, "any_backend": ANY_BACKEND})
            session.execute(text("CREATE INDEX decide_applied_clip ON decide_applied (clip_id, criterion)"))
            session.execute(text("ANALYZE decide_applied"))
            decisions = text(DECISIONS_SQL.format(criteria=criteria, missing=missing, empty=empty))
            session.execute(
                decisions.bindparams(bindparam("decided_at", type_=DateTime(timezone=True))),
                {**params, **STATUS_PARAMS, "profile_id": profile_id, "run_id": run.id, "decided_at": utcnow(), "criteria_count": len(profile.criteria)},
            )
            session.execute(text(FAILURES_SQL), {"profile_id": profile_id})
            session.execute(text("DROP TABLE decide_applied"))
            counts = dict(session.execute(select(Decision.status, func.count()).where(Decision.profile_id == profile_id).group_by(Decision.status)).all())
            session.commit()
        for status in DecisionStatus:
            run.count(status, counts.get(status, 0))
        return {
            "run_id": run.id,
            "profile": profile.name,
            "content_hash": profile.content_hash,
            "profile_id": profile_id,
            "clips": sum(counts.values()),
            **{status.value: counts.get(status, 0) for status in DecisionStatus},
        }


def failures_of(session: Session, profile_id: str, clip_ids: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per clip, the criteria a profile's decision failed, each with metric, backend, value and bounds."""
    query = (
        select(Decision.clip_id, DecisionFailure)
        .join(DecisionFailure, DecisionFailure.decision_id == Decision.id)
        .where(Decision.profile_id == profile_id)
        .order_by(Decision.clip_id, DecisionFailure.criterion)
    )
    if clip_ids is not None:
        query = query.where(Decision.clip_id.in_(clip_ids))
    failures: dict[str, list[dict[str, Any]]] = {}
    for clip_id, f in session.execute(query):
        failures.setdefault(clip_id, []).append(
            {"criterion": f.criterion, "metric": f.metric, "backend": f.backend, "value": f.value, "min": f.min_value, "max": f.max_value}
        )
    return failures


def diff(ctx: Context, a: Profile | str | Path, b: Profile | str | Path) -> dict[str, Any]:
    """Clips that enter (pass under b, not under a) or leave (pass under a, not under b), on current scores; `why`
    names, per such clip, the failures (criterion, value, bounds) of the profile it does not pass under."""
    with ctx.sessions() as session:
        a, b = stored_or_loaded(session, a), stored_or_loaded(session, b)
    decided = {"a": decide(ctx, a), "b": decide(ctx, b)}
    passed_a = select(Decision.clip_id).where(Decision.profile_id == decided["a"]["profile_id"], Decision.status == DecisionStatus.PASSED)
    passed_b = select(Decision.clip_id).where(Decision.profile_id == decided["b"]["profile_id"], Decision.status == DecisionStatus.PASSED)
    with ctx.sessions() as session:
        enter = sorted(session.scalars(passed_b.except_(passed_a)))
        leave = sorted(session.scalars(passed_a.except_(passed_b)))
        why = {**failures_of(session, decided["a"]["profile_id"], enter), **failures_of(session, decided["b"]["profile_id"], leave)}
    summary = {key: {k: v for k, v in d.items() if k != "run_id"} for key, d in decided.items()}
    return {**summary, "enter": enter, "leave": leave, "why": why}
