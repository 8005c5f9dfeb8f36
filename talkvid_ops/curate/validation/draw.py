"""Borderline sampling: the clips nearest a criterion's bound, half just passing and half just failing, for people to
judge (TalkVid drew 100 per criterion, 50 marginal passes and 50 marginal fails).

The rule, exactly (`borderline` is it, as a pure function; `draw` feeds it from the catalog and stores the result):

1. **The rule judged.** Of criterion C of profile P: the rule whose backend is B when `--backend B` is given; else
   C's only rule; else the first rule, in the profile's order, whose backend has at least one stored score of its
   metric (the production backend when the catalog holds its scores).
2. **Eligible clips.** Every clip with a non-null `score` row of the rule's metric written by the rule's backend;
   for `backend: any`, the clip's latest such score (newest `created_at`, then backend name), as `decide` takes it.
   Every clip generation counts. A set validates the rule itself, so a clip that `decide` judges by an earlier
   rule of C (another backend also scored it) is still eligible.
3. **Side and distance.** A clip passes the rule when min <= value <= max (an absent bound does not limit) and fails
   otherwise. Its distance is |value - b| for the bound b nearest its value (either bound where the rule has two;
   on a tie, min); the item records which bound.
4. **Ranking.** All eligible clips, passes and fails together, by distance, then by the tie key
   `make_id("validation-tie", seed, clip id)` (a hash: equally distant clips are ordered by the seed, and the same
   seed always orders them the same way).
5. **Quotas and the cap.** n // 2 fails and n - n // 2 passes (an odd n gives passes the extra clip). The ranking is
   walked once from the top: a clip is taken when its side's quota is not yet full and fewer than K clips of its
   video are taken (the cap counts both sides). A side with too few eligible clips stays short; the other side
   does not fill in, so the set stays a set of marginal cases on both sides. The set's `counts` say requested,
   drawn and eligible per side.
6. **Order shown.** Items are shown to annotators by `make_id("validation-position", seed, clip id)`, which mixes
   passes and fails and hides the distance order; `position` is 1-based.

The draw is deterministic: the same scores, profile, criterion, backend, n, K and seed give the same items. It is
stored under a name (default `<profile>-<criterion>-<backend>-n<n>-k<K>-s<seed>`); drawing a stored name again with
the same result changes nothing, and with another result (scores or thresholds changed) is refused, so annotations
are never moved onto other clips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from talkvid_ops.catalog.models import Clip, Score, ValidationItem, ValidationSet
from talkvid_ops.catalog.status import Bound, RuleSide
from talkvid_ops.context import Context
from talkvid_ops.curate.profiles import ANY_BACKEND, Profile, Rule, as_profile
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id

STAGE = "validate"
DEFAULT_SIZE = 100
DEFAULT_PER_VIDEO = 2
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Candidate:
    clip_id: str
    video_id: str
    value: float


@dataclass(frozen=True)
class Pick:
    clip_id: str
    video_id: str
    value: float
    side: RuleSide
    bound: Bound
    distance: float
    position: int = 0


def classify(value: float, lo: float | None, hi: float | None) -> tuple[RuleSide, Bound, float]:
    """The side of the bounds `value` lies on, the nearest bound and the distance to it (rule steps 3)."""
    passes = (lo is None or value >= lo) and (hi is None or value <= hi)
    side = RuleSide.PASS if passes else RuleSide.FAIL
    to_min = abs(value - lo) if lo is not None else float("inf")
    to_max = abs(value - hi) if hi is not None else float("inf")
    return (side, Bound.MIN, to_min) if to_min <= to_max else (side, Bound.MAX, to_max)


def borderline(candidates: Iterable[Candidate], lo: float | None, hi: float | None, n: int, per_video: int, seed: int) -> tuple[list[Pick], dict[str, Any]]:
    """The draw of the module's rule (steps 3-6) over eligible clips; returns the picks in display order and the counts."""
    quota = {RuleSide.FAIL: n // 2, RuleSide.PASS: n - n // 2}
    ranked, eligible = [], {RuleSide.PASS: 0, RuleSide.FAIL: 0}
    for candidate in candidates:
        side, bound, distance = classify(candidate.value, lo, hi)
        eligible[side] += 1
        ranked.append((distance, make_id("validation-tie", seed, candidate.clip_id), candidate, side, bound))
    ranked.sort(key=lambda entry: entry[:2])
    taken: dict[RuleSide, list[Pick]] = {RuleSide.PASS: [], RuleSide.FAIL: []}
    per_video_taken: dict[str, int] = {}
    for distance, _tie, candidate, side, bound in ranked:
        if len(taken[side]) >= quota[side] or per_video_taken.get(candidate.video_id, 0) >= per_video:
            continue
        per_video_taken[candidate.video_id] = per_video_taken.get(candidate.video_id, 0) + 1
        taken[side].append(Pick(candidate.clip_id, candidate.video_id, candidate.value, side, bound, distance))
        if all(len(taken[s]) >= quota[s] for s in quota):
            break
    picks = sorted(taken[RuleSide.PASS] + taken[RuleSide.FAIL], key=lambda p: make_id("validation-position", seed, p.clip_id))
    picks = [replace(p, position=k) for k, p in enumerate(picks, start=1)]
    counts = {
        f"{side}_{what}": number
        for side in (RuleSide.PASS, RuleSide.FAIL)
        for what, number in (("requested", quota[side]), ("drawn", len(taken[side])), ("eligible", eligible[side]))
    }
    return picks, counts


def _matches(score, rule: Rule):
    return score.metric == rule.metric if rule.backend == ANY_BACKEND else (score.metric == rule.metric) & (score.backend == rule.backend)


def rule_scores(rule: Rule, earlier: Sequence[Rule] = ()) -> Select:
    """(clip_id, value): each clip's score under `rule` (for `backend: any` the latest, as `decide` takes it). With
    `earlier` (the rules before it in its criterion), only clips none of those scored: those `decide` judges by it."""
    ranking = func.row_number().over(partition_by=Score.clip_id, order_by=(Score.created_at.desc(), Score.backend))
    query = select(Score.clip_id, Score.value, ranking.label("rank")).where(_matches(Score, rule), Score.value.is_not(None))
    if earlier:
        other = aliased(Score)
        judged_earlier = exists().where(other.clip_id == Score.clip_id, other.value.is_not(None), or_(*(_matches(other, r) for r in earlier)))
        query = query.where(~judged_earlier)
    ranked = query.subquery()
    return select(ranked.c.clip_id, ranked.c.value).where(ranked.c.rank == 1)


def choose_rule(session: Session, profile: Profile, criterion: str, backend: str | None) -> tuple[int, Rule]:
    """The rule a set judges (rule step 1), with its index in the criterion."""
    if criterion not in profile.criteria:
        raise TalkvidError(f"profile {profile.name!r} has no criterion {criterion!r} ({', '.join(profile.criteria)})")
    rules = profile.criteria[criterion].rules
    if backend is not None:
        for index, rule in enumerate(rules):
            if rule.backend == backend:
                return index, rule
        raise TalkvidError(f"criterion {criterion!r} of {profile.name!r} has no rule for backend {backend!r} ({', '.join(r.backend for r in rules)})")
    if len(rules) == 1:
        return 0, rules[0]
    for index, rule in enumerate(rules):
        if session.scalar(select(exists().where(_matches(Score, rule), Score.value.is_not(None)))):
            return index, rule
    raise TalkvidError(f"no clip has a score for criterion {criterion!r} under any of its rules ({', '.join(r.backend for r in rules)})")


def default_name(profile: Profile, criterion: str, backend: str, n: int, per_video: int, seed: int) -> str:
    return f"{profile.name}-{criterion}-{backend}-n{n}-k{per_video}-s{seed}"


def draw(
    ctx: Context,
    profile: Profile | str | Path,
    criterion: str,
    n: int = DEFAULT_SIZE,
    backend: str | None = None,
    per_video: int = DEFAULT_PER_VIDEO,
    seed: int = DEFAULT_SEED,
    name: str | None = None,
) -> dict[str, Any]:
    """Draw a borderline validation set (the module's rule) from stored scores and store it; returns its id, name,
    counts and whether it was already stored."""
    if n < 2 or per_video < 1:
        raise TalkvidError("a validation set needs n >= 2 (one pass, one fail) and a per-video cap >= 1")
    profile = as_profile(profile)
    with ctx.sessions() as session:
        _index, rule = choose_rule(session, profile, criterion, backend)
    name = name or default_name(profile, criterion, rule.backend, n, per_video, seed)
    params = {"n": n, "per_video": per_video, "seed": seed}
    run_params = {
        "action": "draw",
        "name": name,
        "profile": profile.name,
        "content_hash": profile.content_hash,
        "criterion": criterion,
        "backend": rule.backend,
        **params,
    }
    with ctx.run(STAGE, run_params) as run, ctx.sessions() as session:
        scores = rule_scores(rule).subquery()
        rows = session.execute(select(scores.c.clip_id, Clip.video_id, scores.c.value).join(Clip, Clip.id == scores.c.clip_id))
        picks, counts = borderline((Candidate(*row) for row in rows), rule.min, rule.max, n, per_video, seed)
        if not picks:
            raise TalkvidError(f"no clip has a score of {rule.metric} (backend {rule.backend}): there is nothing to draw")
        from talkvid_ops.curate.decide import store_profile  # the decide stage, only when a set is drawn

        profile_id = store_profile(session, profile)
        set_id = make_id("validation_set", name)
        stored = session.get(ValidationSet, set_id)
        definition = dict(
            profile_id=profile_id, criterion=criterion, backend=rule.backend, metric=rule.metric, min_value=rule.min, max_value=rule.max, params=params
        )
        if stored is not None:
            _check_same(session, stored, definition, picks)
        else:
            session.add(ValidationSet(id=set_id, name=name, counts=counts, run_id=run.id, **definition))
            session.flush()
            session.add_all(
                ValidationItem(
                    id=make_id("validation_item", set_id, p.clip_id), set_id=set_id, clip_id=p.clip_id, position=p.position,
                    side=p.side, bound=p.bound, value=p.value, distance=p.distance,
                )
                for p in picks
            )  # fmt: skip
        session.commit()
        for key, number in counts.items():
            run.count(key, number)
        return {"run_id": run.id, "set_id": set_id, "name": name, "criterion": criterion, "backend": rule.backend, "metric": rule.metric,
                "min": rule.min, "max": rule.max, "items": len(picks), "existing": stored is not None, **counts}  # fmt: skip


def _check_same(session: Session, stored: ValidationSet, definition: dict[str, Any], picks: list[Pick]) -> None:
    same_definition = all(getattr(stored, key) == value for key, value in definition.items())
    stored_clips = set(session.scalars(select(ValidationItem.clip_id).where(ValidationItem.set_id == stored.id)))
    if not same_definition or stored_clips != {p.clip_id for p in picks}:
        raise TalkvidError(
            f"validation set {stored.name!r} exists and this draw gives other clips (its profile, parameters or the scores "
            "changed since): choose another --name"
        )
