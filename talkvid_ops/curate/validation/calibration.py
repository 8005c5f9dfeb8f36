"""Calibrated bounds from a validated set: the rule's bound(s) that agree best with people, shown as a proposed
profile with its effect on the catalog. Nothing is applied: the proposal becomes a profile only when a user saves it
to a file and decides with it.

- **Labelled items**: those with a majority label (see `agreement`); ties and unlabelled items are left out.
- **Candidate bounds**: only the bounds the rule has are moved (a min-only rule stays min-only). Over the labelled
  values sorted and deduplicated, u_0 < ... < u_m-1: a min is u_0 (everything passes) or a cut between u_k-1 and
  u_k (k >= 1; passes are the values >= the cut); a max is u_m-1 or a cut between u_k and u_k+1 (passes are the
  values <= it). A cut is written as the decimal with the fewest digits, rounded from the midpoint of its two
  values, that still separates them, so every bound between the same two values classifies the set the same way.
  A rule with two bounds tries every pair with min <= max.
- **The choice**: the candidate with the highest F1 against the majority labels; with a target precision, among
  candidates reaching it, the highest recall, then F1. Remaining ties go to the candidate closest to the current
  bounds (sum of absolute differences), then the lower min, then the lower max.
- **What-if**, against the stored decisions of the set's profile (`talkvid decide` of that exact profile version),
  in SQL: clips that `decide` judges by this rule (no earlier rule of the criterion scored them) and that would
  *leave* (passed, and their score is outside the new bounds) or *enter* (failed on this criterion alone, nothing
  missing, and their score is inside the new bounds), with their hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import yaml
from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, Decision, DecisionFailure, ValidationItem, ValidationSet
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.status import DecisionStatus, Verdict
from talkvid_ops.context import Context
from talkvid_ops.curate.profiles import Profile, Rule, validate_profile
from talkvid_ops.curate.validation.agreement import filter_agreement, majority, set_labels
from talkvid_ops.curate.validation.annotations import find_set
from talkvid_ops.curate.validation.draw import classify, rule_scores
from talkvid_ops.errors import TalkvidError

MAX_DIGITS = 15


@dataclass(frozen=True)
class Candidate:
    lo: float | None
    hi: float | None
    figures: dict[str, Any]


def shortest_between(low: float, high: float, low_inclusive: bool) -> float:
    """The decimal with the fewest digits, rounded from the midpoint, in (low, high] (or [low, high))."""
    mid = low + (high - low) / 2
    for digits in range(MAX_DIGITS + 1):
        cut = round(mid, digits)
        if (low <= cut < high) if low_inclusive else (low < cut <= high):
            return cut
    return low if low_inclusive else high


def candidate_bounds(values: list[float], has_min: bool, has_max: bool) -> tuple[list[float | None], list[float | None]]:
    """Candidate mins and maxes over the labelled values (see the module)."""
    u = sorted(set(values))
    mins = [u[0], *(shortest_between(u[k - 1], u[k], low_inclusive=False) for k in range(1, len(u)))] if has_min else [None]
    maxes = [u[-1], *(shortest_between(u[k], u[k + 1], low_inclusive=True) for k in range(len(u) - 1))] if has_max else [None]
    return mins, maxes


def evaluate(labelled: list[tuple[float, bool]], lo: float | None, hi: float | None) -> dict[str, Any]:
    """The filter's figures on the labelled (value, accepted) items under the bounds lo, hi."""
    return filter_agreement([(classify(value, lo, hi)[0], Verdict.ACCEPT if accepted else Verdict.REJECT) for value, accepted in labelled])


def best_bounds(labelled: list[tuple[float, bool]], lo: float | None, hi: float | None, target_precision: float | None = None) -> Candidate:
    """The bounds the module's choice picks; lo, hi are the current ones (None: the rule has no such bound)."""
    if not labelled:
        raise TalkvidError("no item of the set has a majority label yet: annotate it first")
    if not any(accepted for _, accepted in labelled):
        raise TalkvidError("no item of the set was accepted: every bound has F1 0, there is nothing to calibrate")
    mins, maxes = candidate_bounds([value for value, _ in labelled], lo is not None, hi is not None)
    candidates = [Candidate(a, b, evaluate(labelled, a, b)) for a, b in product(mins, maxes) if a is None or b is None or a <= b]

    def closeness(c: Candidate) -> tuple:
        moved = sum(abs(new - old) for new, old in ((c.lo, lo), (c.hi, hi)) if old is not None)
        return (moved, c.lo if c.lo is not None else 0.0, c.hi if c.hi is not None else 0.0)

    def score(value: float | None) -> float:
        return -1.0 if value is None else value

    if target_precision is None:
        return min(candidates, key=lambda c: (-score(c.figures["f1"]), *closeness(c)))
    reaching = [c for c in candidates if c.figures["precision"] is not None and c.figures["precision"] >= target_precision]
    if not reaching:
        best = max(score(c.figures["precision"]) for c in candidates)
        raise TalkvidError(f"no bound reaches precision {target_precision} on this set (the best is {best:.3f})")
    return min(reaching, key=lambda c: (-score(c.figures["recall"]), -score(c.figures["f1"]), *closeness(c)))


def what_if(
    session: Session, profile_id: str, criterion: str, rules: list[Rule], moved: Mapping[int, tuple[float | None, float | None]]
) -> dict[str, Any] | None:
    """Clips and hours that enter or leave the profile's stored decisions when the rules of `criterion` whose index
    `moved` holds are bounded by its (lo, hi) instead (see the module); None when the catalog holds no decision of
    this profile version. Each clip is judged by one rule of the criterion, so the moved rules' clips are disjoint."""
    if not session.scalar(select(func.count()).select_from(Decision).where(Decision.profile_id == profile_id)):
        return None
    failing_only_here = (
        select(DecisionFailure.decision_id).group_by(DecisionFailure.decision_id).having(func.count() == 1, func.min(DecisionFailure.criterion) == criterion)
    )
    leave, enter = [], []
    for index, (lo, hi) in sorted(moved.items()):
        applied = rule_scores(rules[index], rules[:index]).subquery()
        inside = and_(true(), *([applied.c.value >= lo] if lo is not None else []), *([applied.c.value <= hi] if hi is not None else []))
        judged = (
            select(Decision.clip_id, Clip.duration, Decision.missing)
            .join(applied, applied.c.clip_id == Decision.clip_id)
            .join(Clip, Clip.id == Decision.clip_id)
            .where(Decision.profile_id == profile_id)
        )
        leave += session.execute(judged.where(Decision.status == DecisionStatus.PASSED, ~inside)).all()
        enter += [
            row
            for row in session.execute(judged.where(Decision.status == DecisionStatus.FAILED, Decision.id.in_(failing_only_here), inside))
            if not row.missing
        ]
    passed, seconds = session.execute(
        select(func.count(), func.coalesce(func.sum(Clip.duration), 0.0))
        .select_from(Decision)
        .join(Clip, Clip.id == Decision.clip_id)
        .where(Decision.profile_id == profile_id, Decision.status == DecisionStatus.PASSED)
    ).one()

    def side(rows) -> dict[str, Any]:
        rows = sorted(rows, key=lambda row: row.clip_id)
        return {"clips": len(rows), "hours": sum(row.duration for row in rows) / 3600, "clip_ids": [row.clip_id for row in rows]}

    return {"passed_now": {"clips": passed, "hours": seconds / 3600}, "enter": side(enter), "leave": side(leave)}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _bounds(lo: float | None, hi: float | None) -> str:
    return " ".join(f"{key} {value:g}" for key, value in (("min", lo), ("max", hi)) if value is not None)


def calibrate(ctx: Context, set_ref: str, target_precision: float | None = None, name: str | None = None) -> dict[str, Any]:
    """The proposed bounds for a validated set's rule, the proposed profile (validated, as YAML with a header that
    explains it) and the what-if on the catalog. Writes nothing."""
    with ctx.sessions() as session:
        validation_set: ValidationSet = find_set(session, set_ref)
        profile_row = session.get(ProfileRow, validation_set.profile_id)
        profile = validate_profile(profile_row.body, source=f"profile {profile_row.name}@{profile_row.content_hash}")
        rules = profile.criteria[validation_set.criterion].rules
        index = next(k for k, r in enumerate(rules) if (r.backend, r.metric) == (validation_set.backend, validation_set.metric))
        sides, labels = set_labels(session, validation_set.id)
        values = dict(session.execute(select(ValidationItem.id, ValidationItem.value).where(ValidationItem.set_id == validation_set.id)).all())
        verdicts = {item: majority(list(labels.get(item, {}).values())) for item in sides}
        labelled = [(values[item], verdict == Verdict.ACCEPT) for item, verdict in sorted(verdicts.items()) if verdict is not None]
        lo, hi = validation_set.min_value, validation_set.max_value
        best = best_bounds(labelled, lo, hi, target_precision)
        effect = what_if(session, profile_row.id, validation_set.criterion, rules, {index: (best.lo, best.hi)})
    current = evaluate(labelled, lo, hi)
    note = (f"calibrated on validation set {validation_set.name} ({current['n']} labelled clips): "
            f"F1 {_fmt(best.figures['f1'])}, precision {_fmt(best.figures['precision'])}, recall {_fmt(best.figures['recall'])}; "
            f"was {_bounds(lo, hi)} with F1 {_fmt(current['f1'])}")  # fmt: skip
    proposed = proposed_profile(profile, validation_set.criterion, index, best.lo, best.hi, note, name)
    result = {
        "set": validation_set.name,
        "profile": profile.name,
        "content_hash": profile.content_hash,
        "criterion": validation_set.criterion,
        "backend": validation_set.backend,
        "metric": validation_set.metric,
        "target_precision": target_precision,
        "current": {"min": lo, "max": hi, **current},
        "proposed": {"min": best.lo, "max": best.hi, **best.figures},
        "what_if": effect,
        "proposed_profile": proposed.body(),
    }
    result["yaml"] = render_proposal(result)
    return result


def proposed_profile(profile: Profile, criterion: str, index: int, lo: float | None, hi: float | None, note: str, name: str | None) -> Profile:
    body = profile.body()
    rule = body["criteria"][criterion]["rules"][index]
    rule.update({key: value for key, value in (("min", lo), ("max", hi)) if value is not None}, note=note)
    body["name"] = name or f"{profile.name}.calibrated"
    return validate_profile(body, source="the proposed profile")


def render_proposal(result: dict[str, Any]) -> str:
    """The proposed profile as YAML, headed by comments that say what changed and what it would do."""
    current, proposed, effect = result["current"], result["proposed"], result["what_if"]
    aim = f"precision >= {result['target_precision']}, then recall" if result["target_precision"] is not None else "the highest F1"
    lines = [
        f"# Proposed by `talkvid validate calibrate {result['set']}` ({aim}). NOT applied: save this to a file, check it",
        "# with `talkvid profiles validate FILE` and decide with `talkvid decide --profile FILE` to use it.",
        f"# {result['criterion']} ({result['backend']} {result['metric']}): {_bounds(current['min'], current['max'])} -> "
        f"{_bounds(proposed['min'], proposed['max'])}",
        f"# on the set ({current['n']} clips with a majority label): F1 {_fmt(current['f1'])} -> {_fmt(proposed['f1'])}, "
        f"precision {_fmt(current['precision'])} -> {_fmt(proposed['precision'])}, recall {_fmt(current['recall'])} -> {_fmt(proposed['recall'])}",
    ]
    if effect is None:
        lines.append(f"# what-if: the catalog holds no decision of {result['profile']}@{result['content_hash']}; run `talkvid decide` with it first")
    else:
        lines.append(
            f"# what-if against the stored decisions of {result['profile']}@{result['content_hash']} ({effect['passed_now']['clips']} clips, "
            f"{effect['passed_now']['hours']:.2f} h passed): enter {effect['enter']['clips']} clips ({effect['enter']['hours']:.2f} h), "
            f"leave {effect['leave']['clips']} clips ({effect['leave']['hours']:.2f} h)"
        )
    return "\n".join(lines) + "\n" + yaml.safe_dump(result["proposed_profile"], sort_keys=False, allow_unicode=True)
