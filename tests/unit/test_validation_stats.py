"""Agreement statistics and calibration against figures computed by hand, the degenerate cases, and the borderline
rule as a pure function."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from talkvid_ops.catalog.status import Bound, RuleSide, Verdict
from talkvid_ops.curate.validation.agreement import agreement, cohen_kappa, majority, validation_table, wilson
from talkvid_ops.curate.validation.calibration import best_bounds, candidate_bounds, shortest_between
from talkvid_ops.curate.validation.draw import Candidate, borderline, classify
from talkvid_ops.errors import TalkvidError

A, R = Verdict.ACCEPT, Verdict.REJECT
P, F = RuleSide.PASS, RuleSide.FAIL

# Ten items, two annotators. 1-4 both accept, 5-6 alice accepts and bob rejects, 7-9 both reject, 10 bob accepts.
ALICE = [A, A, A, A, A, A, R, R, R, R]
BOB = [A, A, A, A, R, R, R, R, R, A]
SIDES = [P, P, P, F, P, F, P, F, F, F]  # the rule's verdicts


def two_annotators() -> tuple[dict, dict]:
    sides = {f"i{k}": side for k, side in enumerate(SIDES, start=1)}
    labels = {f"i{k}": {"alice": a, "bob": b} for k, (a, b) in enumerate(zip(ALICE, BOB), start=1)}
    return sides, labels


def test_wilson_interval_by_hand_and_against_scipy():
    # 5 of 7: p = 0.714286, z^2 = 3.841459; centre 0.988676, spread 0.432766, denominator 1.548780
    low, high = wilson(5, 7)
    assert low == pytest.approx(0.35893, abs=1e-5) and high == pytest.approx(0.91778, abs=1e-5)
    for k, n in ((5, 7), (0, 4), (4, 4), (47, 50), (1, 1)):
        reference = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k, n) == pytest.approx([reference.low, reference.high], abs=1e-9)
    assert wilson(0, 0) is None


def test_majority_and_ties():
    assert majority([A, A, R]) == A and majority([R]) == R and majority([A, R, R]) == R
    assert majority([A, R]) is None and majority([]) is None


def test_kappa_between_two_annotators_by_hand():
    # po = 7/10; p_alice(accept) = 0.6, p_bob(accept) = 0.5 -> pe = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = 0.2/0.5 = 0.4
    # SE = sqrt(0.7*0.3 / (10 * 0.25)) = 0.289828 -> 0.4 +- 0.568053
    k = cohen_kappa(ALICE, BOB)
    assert (k["n"], k["observed"], k["expected"]) == (10, pytest.approx(0.7), pytest.approx(0.5))
    assert k["kappa"] == pytest.approx(0.4)
    assert k["kappa_ci"] == pytest.approx([-0.16805, 0.96805], abs=1e-5)


def test_filter_against_the_majority_by_hand():
    # majority: 1-4 accept, 7-9 reject, 5, 6, 10 ties (left out)
    # TP = 1,2,3; FN = 4; FP = 7; TN = 8,9 -> accuracy 5/7, precision 3/4, recall 3/4, F1 6/8
    stats = agreement(*two_annotators())
    assert (stats["items"], stats["labelled"], stats["ties"], stats["unlabelled"]) == (10, 10, 3, 0)
    f = stats["filter"]
    assert (f["n"], f["tp"], f["fp"], f["fn"], f["tn"]) == (7, 3, 1, 1, 2)
    assert f["accuracy"] == pytest.approx(5 / 7) and f["precision"] == 0.75 and f["recall"] == 0.75 and f["f1"] == 0.75
    assert f["accuracy_ci"] == pytest.approx([0.35893, 0.91778], abs=1e-5)
    assert f["precision_ci"] == pytest.approx(wilson(3, 4))
    (pair,) = stats["kappa"]
    assert pair["annotators"] == ["alice", "bob"] and pair["kappa"] == pytest.approx(0.4)
    assert stats["annotators"] == {"alice": 10, "bob": 10}


def test_one_annotator_reports_the_filter_only():
    sides, labels = two_annotators()
    alone = {item: {"alice": verdicts["alice"]} for item, verdicts in labels.items() if item != "i10"}
    stats = agreement(sides, alone)
    assert stats["kappa"] == [] and stats["ties"] == 0 and stats["unlabelled"] == 1
    # alice only: TP 1,2,3,5; FN 4,6; FP 7; TN 8,9 (item 10 unlabelled)
    f = stats["filter"]
    assert (f["tp"], f["fn"], f["fp"], f["tn"]) == (4, 2, 1, 2)
    assert f["precision"] == pytest.approx(4 / 5) and f["recall"] == pytest.approx(4 / 6) and f["f1"] == pytest.approx(8 / 11)


def test_all_accept_degenerate_case():
    sides = {"a": P, "b": P, "c": F}
    labels = {item: {"alice": A, "bob": A} for item in sides}
    stats = agreement(sides, labels)
    (pair,) = stats["kappa"]
    assert pair["observed"] == 1.0 and pair["expected"] == 1.0 and pair["kappa"] is None and pair["kappa_ci"] is None
    f = stats["filter"]
    assert (f["tp"], f["fn"], f["fp"], f["tn"]) == (2, 1, 0, 0)
    assert f["precision"] == 1.0 and f["precision_ci"] == pytest.approx(wilson(2, 2))
    assert f["recall"] == pytest.approx(2 / 3) and f["accuracy"] == pytest.approx(2 / 3) and f["f1"] == pytest.approx(0.8)
    nothing_passes = agreement({"a": F}, {"a": {"alice": A}})["filter"]
    assert nothing_passes["precision"] is None and nothing_passes["precision_ci"] is None and nothing_passes["f1"] == 0.0
    assert agreement({"a": P}, {})["filter"]["accuracy"] is None


def test_classify_takes_the_nearest_of_two_bounds():
    assert classify(40.0, 40.0, None) == (P, Bound.MIN, 0.0)
    assert classify(0.96, 0.5, 0.97)[:2] == (P, Bound.MAX) and classify(0.99, 0.5, 0.97)[:2] == (F, Bound.MAX)
    assert classify(0.45, 0.5, 0.97)[:2] == (F, Bound.MIN) and classify(0.6, 0.5, 0.97)[:2] == (P, Bound.MIN)
    assert classify(5.0, None, 4.0) == (F, Bound.MAX, 1.0)


def test_borderline_quotas_cap_and_order():
    values = {"a1": ("A", 40.0), "a2": ("A", 39.9), "a3": ("A", 40.2), "b1": ("B", 39.5), "c1": ("C", 42.0), "c2": ("C", 10.0)}
    candidates = [Candidate(clip, video, value) for clip, (video, value) in values.items()]
    picks, counts = borderline(candidates, 40.0, None, n=5, per_video=2, seed=0)
    # quotas 3 passes, 2 fails; a3 is skipped by the cap (a1, a2 came first), so c1 is the third pass
    assert {p.clip_id for p in picks} == {"a1", "a2", "b1", "c1"}
    assert counts == {"pass_requested": 3, "pass_drawn": 2, "pass_eligible": 3, "fail_requested": 2, "fail_drawn": 2, "fail_eligible": 3}
    assert sorted(p.position for p in picks) == [1, 2, 3, 4]
    assert picks == borderline(list(reversed(candidates)), 40.0, None, n=5, per_video=2, seed=0)[0]  # input order does not matter


def test_shortest_cut_and_candidates():
    assert shortest_between(38.0, 39.0, low_inclusive=False) == 38.5
    assert shortest_between(40.2, 49.7, low_inclusive=False) == 45.0
    assert shortest_between(0.8, 0.85, low_inclusive=True) == 0.8
    assert shortest_between(0.9, 0.95, low_inclusive=True) == 0.9 and shortest_between(0.95, 0.99, low_inclusive=True) == 0.97
    mins, maxes = candidate_bounds([30, 35, 35, 50], has_min=True, has_max=False)
    assert mins == [30, 32.0, 42.0] and maxes == [None]
    _, maxes = candidate_bounds([0.9, 0.95], has_min=False, has_max=True)
    assert maxes == [0.95, 0.9]


# value, accepted by the majority (current min 40: F1 0.75)
LABELLED = [(30, False), (35, False), (38, False), (39, True), (41, False), (43, True), (45, True), (50, True)]


def test_calibration_maximises_f1():
    # cuts and F1: 30 .667, 32 .727, 36 .8, 38.5 .889, 40 .75, 42 .857, 44 .667, 48 .4
    best = best_bounds(LABELLED, 40.0, None)
    assert (best.lo, best.hi) == (38.5, None)
    assert best.figures["f1"] == pytest.approx(8 / 9) and (best.figures["tp"], best.figures["fp"]) == (4, 1)


def test_calibration_for_a_target_precision():
    best = best_bounds(LABELLED, 40.0, None, target_precision=1.0)
    assert best.lo == 42.0 and best.figures["precision"] == 1.0 and best.figures["recall"] == 0.75
    with pytest.raises(TalkvidError, match="no item of the set was accepted"):
        best_bounds([(1.0, False)], 40.0, None)


def test_calibration_of_two_bounds():
    labelled = [(0.3, False), (0.55, True), (0.7, True), (0.9, True), (0.95, False), (0.99, False)]
    best = best_bounds(labelled, 0.5, 0.97)
    assert (best.lo, best.hi) == (0.4, 0.9) and best.figures["f1"] == 1.0


def test_the_table_for_the_card_and_report():
    sides, labels = two_annotators()
    stats = {"name": "s1", "criterion": "quality", "backend": "classical", "metric": "quality_technical", "min": 40.0, "max": None,
             **agreement(sides, labels)}  # fmt: skip
    headers, (row,) = validation_table([stats])
    cells = dict(zip(headers, row))
    assert cells["rule"] == "classical quality_technical min 40" and cells["clips labelled"] == "10 of 10" and cells["ties"] == "3"
    assert cells["accuracy [95 % CI]"] == "0.714 [0.359, 0.918]" and cells["F1"] == "0.750" and cells["kappa"] == "0.400 (alice / bob)"
    alone = {**stats, **agreement(sides, {item: {"alice": v["alice"]} for item, v in labels.items()})}
    assert dict(zip(headers, validation_table([alone])[1][0]))["kappa"] == "one annotator"
