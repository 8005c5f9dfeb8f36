"""How well a filter agrees with people, and people with each other, on a validation set.

Definitions (TalkVid reports accuracy, F1 and Cohen's kappa; we add precision, recall and intervals):

- **Majority label** of an item: the verdict more than half of its annotators gave. An item whose annotators split
  evenly (one accept, one reject) has no majority: it is a *tie*, counted and left out of the filter's figures.
  Items nobody labelled are counted as *unlabelled* and left out too.
- **The filter against the majority**, positive class = accept / pass: TP = passed and accepted, FP = passed and
  rejected, FN = failed and accepted, TN = failed and rejected. accuracy = (TP + TN) / n, precision = TP / (TP + FP),
  recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN). A figure whose denominator is 0 is undefined (None).
  "Passed" is the rule's verdict on the stored score when the set was drawn.
- **Wilson score interval** (95 %, z = 1.959964) for accuracy, precision and recall, each over its own denominator:
  (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n). F1 is not a proportion of trials and gets none.
- **Cohen's kappa** for each pair of annotators over the items both labelled: po = share of items they agree on,
  pe = pa(accept) pb(accept) + pa(reject) pb(reject), kappa = (po - pe) / (1 - pe); undefined when pe = 1 (both gave
  one and the same verdict to every item: perfect but uninformative agreement, po = 1). Its interval is
  kappa +- z sqrt(po (1 - po) / (n (1 - pe)^2)) (Cohen's large-sample approximation), clipped to [-1, 1].
- A set with one annotator reports the filter's agreement only (no pair, no kappa).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Annotation, ValidationItem, ValidationSet
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.status import RuleSide, Verdict
from talkvid_ops.curate.validation.annotations import list_sets

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval of successes / n; None when n is 0."""
    if n == 0:
        return None
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [(centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)]


def majority(verdicts: list[str]) -> Verdict | None:
    """The verdict of more than half the annotators; None for an even split or no verdict."""
    counts = Counter(verdicts)
    accept, reject = counts[Verdict.ACCEPT], counts[Verdict.REJECT]
    if accept == reject:
        return None
    return Verdict.ACCEPT if accept > reject else Verdict.REJECT


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def filter_agreement(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The filter's figures against people from (rule side, majority verdict) pairs."""
    confusion = Counter((side == RuleSide.PASS, verdict == Verdict.ACCEPT) for side, verdict in pairs)
    tp, fp, fn, tn = confusion[True, True], confusion[True, False], confusion[False, True], confusion[False, False]
    n = tp + fp + fn + tn
    return {
        "n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "accuracy": _ratio(tp + tn, n), "accuracy_ci": wilson(tp + tn, n),
        "precision": _ratio(tp, tp + fp), "precision_ci": wilson(tp, tp + fp),
        "recall": _ratio(tp, tp + fn), "recall_ci": wilson(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }  # fmt: skip


def cohen_kappa(a: list[str], b: list[str], z: float = Z95) -> dict[str, Any]:
    """Cohen's kappa of two annotators' verdicts on the same items (in the same order)."""
    n = len(a)
    if n == 0:
        return {"n": 0, "observed": None, "expected": None, "kappa": None, "kappa_ci": None}
    po = sum(x == y for x, y in zip(a, b)) / n
    pe = sum((a.count(v) / n) * (b.count(v) / n) for v in (Verdict.ACCEPT, Verdict.REJECT))
    if math.isclose(pe, 1.0):
        return {"n": n, "observed": po, "expected": pe, "kappa": None, "kappa_ci": None}
    kappa = (po - pe) / (1 - pe)
    spread = z * math.sqrt(po * (1 - po) / (n * (1 - pe) ** 2))
    return {"n": n, "observed": po, "expected": pe, "kappa": kappa, "kappa_ci": [max(-1.0, kappa - spread), min(1.0, kappa + spread)]}


def agreement(sides: dict[str, str], labels: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Every figure of the module for one set: `sides` is item -> rule side, `labels` item -> annotator -> verdict."""
    majorities = {item: majority(list(labels.get(item, {}).values())) for item in sides}
    labelled = [item for item in sides if labels.get(item)]
    ties = sum(1 for item in labelled if majorities[item] is None)
    pairs = [(sides[item], majorities[item]) for item in sides if majorities[item] is not None]
    by_annotator: dict[str, dict[str, str]] = defaultdict(dict)
    for item, verdicts in labels.items():
        for annotator, verdict in verdicts.items():
            by_annotator[annotator][item] = verdict
    kappas = []
    for first, second in combinations(sorted(by_annotator), 2):
        shared = sorted(set(by_annotator[first]) & set(by_annotator[second]))
        verdicts_a = [by_annotator[first][item] for item in shared]
        verdicts_b = [by_annotator[second][item] for item in shared]
        kappas.append({"annotators": [first, second], **cohen_kappa(verdicts_a, verdicts_b)})
    return {
        "items": len(sides),
        "labelled": len(labelled),
        "unlabelled": len(sides) - len(labelled),
        "ties": ties,
        "annotators": {name: len(items) for name, items in sorted(by_annotator.items())},
        "filter": filter_agreement(pairs),
        "kappa": kappas,
    }


def set_labels(session: Session, set_id: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(item -> rule side, item -> annotator -> verdict) of a set."""
    sides = dict(session.execute(select(ValidationItem.id, ValidationItem.side).where(ValidationItem.set_id == set_id)).all())
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    rows = session.execute(
        select(Annotation.item_id, Annotation.annotator, Annotation.verdict)
        .join(ValidationItem, ValidationItem.id == Annotation.item_id)
        .where(ValidationItem.set_id == set_id)
    )
    for item, annotator, verdict in rows:
        labels[item][annotator] = verdict
    return sides, dict(labels)


def set_statistics(session: Session, validation_set: ValidationSet) -> dict[str, Any]:
    """The set's description (profile, criterion, rule) with every agreement figure."""
    profile = session.get(ProfileRow, validation_set.profile_id)
    return {
        "set_id": validation_set.id,
        "name": validation_set.name,
        "profile": profile.name,
        "content_hash": profile.content_hash,
        "criterion": validation_set.criterion,
        "backend": validation_set.backend,
        "metric": validation_set.metric,
        "min": validation_set.min_value,
        "max": validation_set.max_value,
        **agreement(*set_labels(session, validation_set.id)),
    }


def validation_summary(session: Session) -> list[dict[str, Any]]:
    """Every validation set with its agreement figures, for the dataset card and the report."""
    return [set_statistics(session, validation_set) for validation_set in list_sets(session)]


def _figure(value, interval=None) -> str:
    if value is None:
        return "undefined"
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def statistics_lines(stats: dict[str, Any]) -> list[str]:
    """`set_statistics` as text lines (the CLI's `stats`; its first line heads the page)."""
    f = stats["filter"]
    bounds = " ".join(f"{k} {stats[k]:g}" for k in ("min", "max") if stats[k] is not None)
    people = ", ".join(f"{who} ({n})" for who, n in stats["annotators"].items()) or "nobody yet"
    lines = [
        f"{stats['name']}: {stats['profile']}@{stats['content_hash']} {stats['criterion']} ({stats['backend']} {stats['metric']} {bounds})",
        f"clips {stats['items']}: labelled {stats['labelled']}, ties {stats['ties']}, unlabelled {stats['unlabelled']}; annotators: {people}",
        f"filter vs majority (n={f['n']}): TP {f['tp']} FP {f['fp']} FN {f['fn']} TN {f['tn']}",
        f"  accuracy  {_figure(f['accuracy'], f['accuracy_ci'])}",
        f"  precision {_figure(f['precision'], f['precision_ci'])}",
        f"  recall    {_figure(f['recall'], f['recall_ci'])}",
        f"  F1        {_figure(f['f1'])}",
    ]
    for pair in stats["kappa"]:
        lines.append(f"kappa {pair['annotators'][0]} / {pair['annotators'][1]} (n={pair['n']}): {_figure(pair['kappa'], pair['kappa_ci'])}")
    if not stats["kappa"]:
        lines.append("kappa: needs two annotators")
    return lines


VALIDATION_COLUMNS = ["set", "criterion", "rule", "clips labelled", "ties", "annotators", "accuracy [95 % CI]", "precision", "recall", "F1", "kappa"]


def validation_table(summary: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """`validation_summary` as table headers and rows of text, for the dataset card and the report."""
    rows = []
    for s in summary:
        f = s["filter"]
        bounds = " ".join(f"{k} {s[k]:g}" for k in ("min", "max") if s[k] is not None)
        kappas = "; ".join(f"{_figure(p['kappa'])} ({p['annotators'][0]} / {p['annotators'][1]})" for p in s["kappa"]) or "one annotator"
        rows.append([
            s["name"], s["criterion"], f"{s['backend']} {s['metric']} {bounds}", f"{s['labelled']} of {s['items']}", str(s["ties"]),
            str(len(s["annotators"])), _figure(f["accuracy"], f["accuracy_ci"]), _figure(f["precision"]), _figure(f["recall"]),
            _figure(f["f1"]), kappas,
        ])  # fmt: skip
    return VALIDATION_COLUMNS, rows
