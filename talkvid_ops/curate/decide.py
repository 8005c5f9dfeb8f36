"""Apply a threshold profile to stored scores: set-based SQL, no Python loop over clips, no model call.

For every clip and criterion, the first rule (in the profile's order) whose backend has a score for the clip
applies (`backend: any` matches any backend; among several, the latest score). A clip fails when any applied
rule's bounds are violated, is undecided when no failure was found but some criterion had no usable score, and
passes otherwise. Each decision lists the criteria it could not evaluate, and each failure records the criterion,
metric, the backend whose score was judged, its value and the bounds. Deciding a profile again replaces its
decisions; a profile's row is keyed by its name and content hash, so changed thresholds are a new version.
"""

from __future__ import annotations

import json
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


class _ProfileSql:
    """The profile as SQL expressions over one pivot row per clip (`decide_pivot`: a column per rule), with their
    bound parameters. Per rule `j`, `v{j}` is its score's value; for `backend: any` rules also `w{j}`, the backend
    of that score, and per clip `n_any`, how many scores the `backend: any` rules' metrics have: more than one per
    metric (several backends scored one) and the latest is looked up (`several_backends`)."""

    def __init__(self, profile: Profile, dialect: str):
        # the backend names: only ever compared bytewise (one backend's name, or the latest looked up), so
        # PostgreSQL need not apply the database's locale to them (a third of what each backend column cost)
        binary = ' COLLATE "C"' if dialect == "postgresql" else ""
        self.params: dict[str, Any] = {}
        self.columns: list[str] = []  # the pivot's aggregate columns
        self.any_rules: list[int] = []  # rules whose score may come from several backends
        self.several_backends: str | None = None  # the pivot rows where some of them did (set below when there are such rules)
        self.criteria: list[tuple[str, list[tuple[int, Any]]]] = []  # criterion -> [(rule number, rule)], profile order
        for k, (criterion, spec) in enumerate(profile.criteria.items()):
            self.params[f"c{k}"] = criterion
            numbered = []
            for rule in spec.rules:
                j = len(self.columns)
                numbered.append((j, rule))
                self.params.update({f"m{j}": rule.metric, f"b{j}": rule.backend, f"lo{j}": rule.min, f"hi{j}": rule.max})
                if rule.backend == ANY_BACKEND:
                    self.any_rules.append(j)
                    self.columns.append(f"MAX(CASE WHEN metric = :m{j} THEN value END) AS v{j}, MIN(CASE WHEN metric = :m{j} THEN backend{binary} END) AS w{j}")
                else:  # (clip, backend, metric) is unique: at most one score
                    self.columns.append(f"MAX(CASE WHEN metric = :m{j} AND backend = :b{j} THEN value END) AS v{j}")
            self.criteria.append((criterion, numbered))
        self.metrics = ", ".join(f":m{j}" for j in range(len(self.columns)))
        # one rule per metric the `backend: any` rules read: a clip scored by one backend per such metric has as
        # many scores of them as these rules have values (one count per clip: a count per rule cost, together,
        # about as much as all the values)
        any_metrics = {self.params[f"m{j}"]: j for j in reversed(self.any_rules)}
        if any_metrics:
            self.columns.append(f"COUNT(CASE WHEN metric IN ({', '.join(f':m{j}' for j in any_metrics.values())}) THEN 1 END) AS n_any")
            self.several_backends = "n_any > " + " + ".join(f"CASE WHEN v{j} IS NULL THEN 0 ELSE 1 END" for j in any_metrics.values())

    def _first(self, numbered: list[tuple[int, Any]], then) -> str:
        """CASE over the criterion's rules: `then(j, rule)` of the first rule with a score."""
        return "CASE " + " ".join(f"WHEN v{j} IS NOT NULL THEN {then(j, rule)}" for j, rule in numbered) + " END"

    @staticmethod
    def _out_of_bounds(j: int, rule) -> str:
        bounds = ([f"v{j} < :lo{j}"] if rule.min is not None else []) + ([f"v{j} > :hi{j}"] if rule.max is not None else [])
        return f"CASE WHEN {' OR '.join(bounds)} THEN 1 ELSE 0 END" if bounds else "0"

    def failing(self, numbered) -> str:
        return f"COALESCE({self._first(numbered, self._out_of_bounds)}, 0)"

    def missing(self, numbered) -> str:
        return " AND ".join(f"v{j} IS NULL" for j, _ in numbered)

    def status(self) -> str:
        failing = " + ".join(self.failing(numbered) for _, numbered in self.criteria)
        missing = " OR ".join(f"({self.missing(numbered)})" for _, numbered in self.criteria)
        return f"CASE WHEN {failing} > 0 THEN :failed WHEN {missing} THEN :undecided ELSE :passed END"

    def missing_list(self) -> str:
        """The JSON list of the criteria without a score, in name order, as text."""
        items = []
        for k, (criterion, numbered) in sorted(enumerate(self.criteria), key=lambda item: item[1][0]):
            self.params[f"q{k}"] = "," + json.dumps(criterion)
            items.append(f"CASE WHEN {self.missing(numbered)} THEN :q{k} ELSE '' END")
        return f"'[' || SUBSTR({' || '.join(items)}, 2) || ']'"

    def failures(self) -> str:
        """One SELECT per criterion of the failures it finds, glued with UNION ALL."""
        selects = []
        for k, (_, numbered) in enumerate(self.criteria):
            metric = self._first(numbered, lambda j, rule: f":m{j}")
            backend = self._first(numbered, lambda j, rule: f"w{j}" if rule.backend == ANY_BACKEND else f":b{j}")
            value = self._first(numbered, lambda j, rule: f"v{j}")
            lo = self._first(numbered, lambda j, rule: f"CAST(:lo{j} AS DOUBLE PRECISION)")
            hi = self._first(numbered, lambda j, rule: f"CAST(:hi{j} AS DOUBLE PRECISION)")
            selects.append(
                f"SELECT :profile_id || clip_id, :c{k}, {metric}, {backend}, {value}, {lo}, {hi} FROM decide_pivot WHERE {self.failing(numbered)} = 1"
            )
        return "\nUNION ALL\n".join(selects)


# One row per scored clip: each rule's value (a single pass over the score table, no sort per criterion).
PIVOT_SQL = """
CREATE TEMPORARY TABLE decide_pivot AS
SELECT clip_id, {columns}
FROM score
WHERE value IS NOT NULL AND metric IN ({metrics})
GROUP BY clip_id
"""

# `backend: any` with several backends' scores of one clip: the latest applies (at equal times, the first by name).
# One statement for every such rule, over the clips with several backends' scores of some of their metrics (a
# single backend's score is its own latest).
LATEST_SQL = """
UPDATE decide_pivot SET {columns}
WHERE {several_backends}
"""
LATEST_COLUMN = """
    {column}{j} = (SELECT s.{field} FROM score s WHERE s.clip_id = decide_pivot.clip_id AND s.metric = :m{j} AND s.value IS NOT NULL
                   ORDER BY s.created_at DESC, s.backend LIMIT 1)"""

# One decision per clip of the catalog; a clip without any score has no pivot row and is undecided. The profile's
# decisions already there are updated in place (deleting them first cost a cascade check per row, and inserting
# them again a foreign-key check per reference, and on PostgreSQL an UPDATE over a join, unlike INSERT ... ON
# CONFLICT, neither probes the unique index nor locks each row before updating it); then the clips the profile
# has not decided yet get theirs, in clip order, so that the decision indexes fill page by page. A plain INSERT:
# decide holds the profile's row locked, so no other decision of the profile can come in between (ON CONFLICT
# cost a quarter of the insertion).
UPDATE_DECISIONS_SQL = """
UPDATE decision SET status = x.status, missing = x.missing, run_id = :run_id, decided_at = :decided_at
FROM (SELECT c.id AS clip_id, {status} AS status, {missing} AS missing FROM clip c LEFT JOIN decide_pivot p ON p.clip_id = c.id) AS x
WHERE decision.profile_id = :profile_id AND decision.clip_id = x.clip_id
"""

INSERT_DECISIONS_SQL = """
INSERT INTO decision (id, clip_id, profile_id, status, missing, run_id, decided_at)
SELECT :profile_id || c.id, c.id, :profile_id, {status}, {missing}, :run_id, :decided_at
FROM clip c LEFT JOIN decide_pivot p ON p.clip_id = c.id
WHERE NOT EXISTS (SELECT 1 FROM decision d WHERE d.profile_id = :profile_id AND d.clip_id = c.id)
ORDER BY c.id
"""

FAILURES_SQL = """
INSERT INTO decision_failure (decision_id, criterion, metric, backend, value, min_value, max_value)
{failures}
ORDER BY 1
"""

# the missing list's text as the dialect's JSON column takes it
AS_JSON = {"sqlite": "{}", "postgresql": "CAST({} AS JSON)"}


def decide(ctx: Context, profile: Profile | str | Path) -> dict[str, Any]:
    """Decide every clip of the catalog under `profile`; returns counts per status."""
    profile = as_profile(profile)
    with ctx.run(STAGE, {"profile": profile.name, "content_hash": profile.content_hash}) as run:
        with ctx.sessions() as session:
            profile_id = store_profile(session, profile)
            # one decide of a profile at a time: another one waits here until this one commits, then replaces its
            # decisions (SQLite has a single writer anyway)
            session.execute(select(ProfileRow.id).where(ProfileRow.id == profile_id).with_for_update(key_share=True))  # FOR NO KEY UPDATE
            dialect = session.get_bind().dialect.name
            if dialect not in AS_JSON:  # pragma: no cover - we support the two above
                raise NotImplementedError(f"decide is not implemented for {dialect}")
            session.execute(delete(DecisionFailure).where(DecisionFailure.decision_id.in_(select(Decision.id).where(Decision.profile_id == profile_id))))
            sql = _ProfileSql(profile, dialect)
            status, missing, failures = sql.status(), AS_JSON[dialect].format(sql.missing_list()), sql.failures()
            if dialect == "postgresql":
                # (this transaction only) the grouping of every score row hashes in memory instead of spilling to
                # disk; no JIT compilation: it took longer than it saved (a second on the failures' query alone);
                # nothing here must survive a crash before the commit returns
                session.execute(text("SET LOCAL work_mem = '256MB'"))
                session.execute(text("SET LOCAL jit = off"))
                session.execute(text("SET LOCAL synchronous_commit = off"))
            session.execute(text("DROP TABLE IF EXISTS decide_pivot"))
            session.execute(text(PIVOT_SQL.format(columns=", ".join(sql.columns), metrics=sql.metrics)), sql.params)
            if dialect == "postgresql":
                session.execute(text("ANALYZE decide_pivot"))  # the joins below are planned on its true size
            if sql.any_rules:
                columns = ",".join(
                    LATEST_COLUMN.format(column=column, field=field, j=j) for j in sql.any_rules for column, field in (("v", "value"), ("w", "backend"))
                )
                session.execute(text(LATEST_SQL.format(columns=columns, several_backends=sql.several_backends)), sql.params)
            params = {**sql.params, **STATUS_PARAMS, "profile_id": profile_id, "run_id": run.id, "decided_at": utcnow()}
            for statement in (UPDATE_DECISIONS_SQL, INSERT_DECISIONS_SQL):
                decisions = text(statement.format(status=status, missing=missing))
                session.execute(decisions.bindparams(bindparam("decided_at", type_=DateTime(timezone=True))), params)
            session.execute(text(FAILURES_SQL.format(failures=failures)), {**sql.params, "profile_id": profile_id})
            session.execute(text("DROP TABLE decide_pivot"))
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
