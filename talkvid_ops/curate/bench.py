"""The bench: a balanced, leak-free held-out set drawn from the clips a profile passed, by a YAML spec.

A spec names sub-benchmarks (each balances one label: age group, gender, ethnicity or language) with the clips
requested per stratum, and the clip length. The draw is deterministic for a seed: candidates are ordered by a hash
of (seed, clip id), so adding clips to the catalog does not reshuffle the others. Scarce strata draw first; a clip
serves one sub-benchmark; caps per video and per speaker keep the bench diverse. Clips labelled Unknown never count.

Held out are whole source videos and whole speakers: the training release leaves out every clip of a video or a
person that has a clip in the bench (TalkVid's released bench shares source videos with its training set). A budget
(`max_held_out_share` of the passed clips) keeps a bench from eating a small catalog's training set: a clip whose
hold-out would exceed it is passed over and counted in its stratum's report row, and a stratum it kept short says
so (`reason`: the hold-out budget, the caps, or not enough eligible clips).

`draw_bench` stores a draw in the catalog (`bench`: profile, spec, seed, report, a hash of the candidates; and
`bench_clip`: each picked clip with its sub-benchmark, stratum, window and speaker), keyed by profile, spec hash
and seed, so drawing again replaces it in place. An export reads the stored draw (`stored_draw`) and refuses one
drawn from other candidates than the catalog now holds (decisions, labels or speakers changed since).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Bench, BenchClip, Clip, Decision
from talkvid_ops.catalog.queries import CURRENT_GENERATION, crawled_by, generation_condition
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import profile_row_id
from talkvid_ops.curate.labels.resolution import resolve_labels
from talkvid_ops.curate.labels.vocabulary import AGE_GROUPS, ETHNICITIES, GENDERS, LANGUAGES, UNKNOWN
from talkvid_ops.curate.profiles import Profile, as_profile
from talkvid_ops.curate.queries import select_in
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import content_hash, make_id
from talkvid_ops.yamlfile import load_shipped_or_file

SHIPPED_PACKAGE = "talkvid_ops.curate.shipped_specs"
# Why a stratum ran short, most actionable first: a larger `max_held_out_share` would have let clips in; eligible
# clips were passed over for the caps per video and speaker (or serve another sub-benchmark); the catalog has too few.
SHORT_OF_BUDGET = "hold-out budget"
SHORT_OF_CAPS = "per-video/per-speaker caps"
SHORT_OF_CLIPS = "not enough eligible clips"
# How a stratum's report row is shown (the card and the HTML report): column title -> key
STRATA_COLUMNS = {"sub-benchmark": "subbenchmark", "stratum": "stratum", "requested": "requested", "achieved": "achieved",
                  "shortfall": "shortfall", "eligible clips": "eligible", "over hold-out budget": "over_budget",
                  "passed over by the caps": "capped", "short for": "reason"}  # fmt: skip
STRATA_VALUES = {"age_group": AGE_GROUPS, "gender": GENDERS, "ethnicity": ETHNICITIES, "language": LANGUAGES}


class SubBenchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["age_group", "gender", "ethnicity", "language"]
    strata: dict[str, int] = Field(min_length=1, description="label value -> clips requested")

    @model_validator(mode="after")
    def _check(self) -> SubBenchmark:
        allowed = STRATA_VALUES[self.label]
        for value, count in self.strata.items():
            if value not in allowed:
                raise ValueError(f"stratum {value!r} is not a {self.label} value ({', '.join(allowed)})")
            if count < 0:
                raise ValueError(f"stratum {value!r}: a negative count ({count})")
        return self


class BenchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    clip_seconds: float = Field(5.0, gt=0)
    max_clips_per_video: int | None = Field(1, ge=1)
    max_clips_per_person: int | None = Field(1, ge=1)
    require_person: bool = Field(True, description="only clips with a known speaker, so speakers can be held out")
    max_held_out_share: float | None = Field(
        0.2, gt=0, le=1, description="the most of the passed clips the bench may take from training, held-out videos and speakers included"
    )
    subbenchmarks: dict[str, SubBenchmark] = Field(min_length=1)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def content_hash(self) -> str:
        return content_hash(self.body())


def load_bench_spec(spec: str | Path | BenchSpec) -> BenchSpec:
    """A shipped spec by name, a YAML file by path, or a spec as is."""
    if isinstance(spec, BenchSpec):
        return spec
    return load_shipped_or_file(BenchSpec, spec, SHIPPED_PACKAGE, "bench spec", "a mapping with name and subbenchmarks")


@dataclass(frozen=True)
class BenchCandidate:
    clip_id: str
    video_id: str
    person: str | None
    fps: float
    start_frame: int
    end_frame: int
    labels: dict[str, str]  # label name -> display value

    @classmethod
    def of(cls, clip, labels: dict) -> BenchCandidate:
        """From a clip (row or record with id, video_id, fps, start_frame, end_frame) and its resolved labels."""
        display = {name: label.display for name, label in labels.items()}
        person = display.get("person")
        return cls(clip.id, clip.video_id, None if person in (None, UNKNOWN) else person, clip.fps,
                   clip.start_frame, clip.end_frame, display)  # fmt: skip


@dataclass(frozen=True)
class BenchPick:
    subbenchmark: str
    stratum: str
    candidate: BenchCandidate
    start_frame: int  # the bench window inside the clip
    end_frame: int


@dataclass
class BenchDraw:
    spec: BenchSpec
    seed: int
    picks: list[BenchPick]
    strata: list[dict[str, Any]]  # requested vs achieved, in spec order
    held_out_videos: set[str] = field(default_factory=set)
    held_out_persons: set[str] = field(default_factory=set)
    held_out_clips: int = 0
    held_out_budget: int | None = None
    candidates: int = 0  # the passed clips drawn from; the budget is a share of them

    @property
    def shortfalls(self) -> list[str]:
        def line(row: dict[str, Any]) -> str:
            passed_over = [f"{row['over_budget']} over the hold-out budget"] if row["over_budget"] else []
            passed_over += [f"{row['capped']} passed over by the caps"] if row["capped"] else []
            return (f"{row['subbenchmark']}/{row['stratum']}: {row['achieved']} of {row['requested']} "
                    f"({row['shortfall']} short: {row['reason']}; eligible {', '.join([str(row['eligible']), *passed_over])})")  # fmt: skip

        return [line(row) for row in self.strata if row["shortfall"]]

    @property
    def budget_limited(self) -> bool:
        """Whether the hold-out budget, not the catalog, kept some stratum short."""
        return any(row["reason"] == SHORT_OF_BUDGET for row in self.strata)

    def holds_out(self, video_id: str, person: str | None) -> bool:
        return video_id in self.held_out_videos or (person is not None and person in self.held_out_persons)

    def report(self) -> dict[str, Any]:
        return {
            "spec": self.spec.name,
            "spec_hash": self.spec.content_hash,
            "seed": self.seed,
            "clip_seconds": self.spec.clip_seconds,
            "require_person": self.spec.require_person,
            "requested": sum(r["requested"] for r in self.strata),
            "achieved": sum(r["achieved"] for r in self.strata),
            "strata": self.strata,
            "shortfalls": self.shortfalls,
            "limited_by": sorted({row["reason"] for row in self.strata if row["reason"]}),
            "held_out": {
                "videos": len(self.held_out_videos),
                "persons": len(self.held_out_persons),
                "clips": self.held_out_clips,
                "budget": self.held_out_budget,
                "max_share": self.spec.max_held_out_share,
                "candidates": self.candidates,
            },  # fmt: skip
        }


def _order_key(seed: int, clip_id: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{clip_id}".encode()).hexdigest()


def _window(candidate: BenchCandidate, seconds: float) -> tuple[int, int] | None:
    """The central `seconds` of a clip in whole frames, or None when the clip is shorter."""
    frames = round(seconds * candidate.fps)
    length = candidate.end_frame - candidate.start_frame
    if frames > length:
        return None
    start = candidate.start_frame + (length - frames) // 2
    return start, start + frames


def draw(candidates: list[BenchCandidate], spec: BenchSpec, seed: int = 0) -> BenchDraw:
    """The bench for these passed clips (see the module docstring); pure and deterministic."""
    eligible = sorted(
        (c for c in candidates if _window(c, spec.clip_seconds) and (c.person or not spec.require_person)),
        key=lambda c: _order_key(seed, c.clip_id),
    )
    used: set[str] = set()
    per_video: Counter[str] = Counter()
    per_person: Counter[str] = Counter()
    picks: list[BenchPick] = []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    # what picking a clip takes from training: every clip of its video and of its speaker
    of_video: dict[str, set[str]] = defaultdict(set)
    of_person: dict[str, set[str]] = defaultdict(set)
    for c in candidates:
        of_video[c.video_id].add(c.clip_id)
        if c.person:
            of_person[c.person].add(c.clip_id)
    held: set[str] = set()
    budget = None if spec.max_held_out_share is None else math.floor(spec.max_held_out_share * len(candidates))

    def taken_from_training(c: BenchCandidate) -> set[str]:
        return of_video[c.video_id] | (of_person[c.person] if c.person else set())

    def allowed(c: BenchCandidate) -> bool:
        return (
            c.clip_id not in used
            and (spec.max_clips_per_video is None or per_video[c.video_id] < spec.max_clips_per_video)
            and (spec.max_clips_per_person is None or c.person is None or per_person[c.person] < spec.max_clips_per_person)
        )

    for sub_name, sub in spec.subbenchmarks.items():
        pools = {s: [c for c in eligible if c.labels.get(sub.label, UNKNOWN) == s] for s in sub.strata}
        order = list(sub.strata)
        for stratum in sorted(order, key=lambda s: (len(pools[s]), order.index(s))):
            requested, taken, over_budget, capped = sub.strata[stratum], 0, 0, 0
            for candidate in pools[stratum]:
                if taken == requested:
                    break
                if not allowed(candidate):
                    capped += 1
                    continue
                extra = taken_from_training(candidate) - held
                if budget is not None and len(held) + len(extra) > budget:
                    over_budget += 1
                    continue
                held |= extra
                start, end = _window(candidate, spec.clip_seconds)
                picks.append(BenchPick(sub_name, stratum, candidate, start, end))
                used.add(candidate.clip_id)
                per_video[candidate.video_id] += 1
                if candidate.person:
                    per_person[candidate.person] += 1
                taken += 1
            rows[(sub_name, stratum)] = {
                "subbenchmark": sub_name,
                "label": sub.label,
                "stratum": stratum,
                "requested": requested,
                "achieved": taken,
                "shortfall": requested - taken,
                "eligible": len(pools[stratum]),
                "over_budget": over_budget,
                "capped": capped,
                "reason": None if taken == requested else SHORT_OF_BUDGET if over_budget else SHORT_OF_CAPS if capped else SHORT_OF_CLIPS,
            }
    strata = [rows[(name, s)] for name, sub in spec.subbenchmarks.items() for s in sub.strata]
    picks.sort(
        key=lambda p: (list(spec.subbenchmarks).index(p.subbenchmark), list(spec.subbenchmarks[p.subbenchmark].strata).index(p.stratum), p.candidate.clip_id)
    )
    return BenchDraw(
        spec=spec,
        seed=seed,
        picks=picks,
        strata=strata,
        held_out_videos={p.candidate.video_id for p in picks},
        held_out_persons={p.candidate.person for p in picks if p.candidate.person},
        held_out_clips=len(held),
        held_out_budget=budget,
        candidates=len(candidates),
    )


def limits_note(report: dict[str, Any]) -> str | None:
    """What kept a bench short, in words (the card, the HTML report, `talkvid bench draw`); None when nothing did."""
    short = [row for row in report["strata"] if row["reason"]]
    by_budget = [row for row in short if row["reason"] == SHORT_OF_BUDGET]
    held = report["held_out"]
    notes = []
    if by_budget:
        which = "this bench" if len(by_budget) == len(short) else f"{len(by_budget)} of its {len(short)} short strata"
        notes.append(
            f"The hold-out budget, not the data, limited {which}: max_held_out_share {held['max_share']:g} lets the "
            f"bench take at most {held['budget']} of the {held['candidates']} passed clips from training (its clips and "
            "every clip of their videos and speakers), so "
            + ("no clip could be drawn. " if held["budget"] == 0 else "eligible clips were passed over. ")
            + "A spec with a larger max_held_out_share (null: no budget) draws more: `talkvid export --bench-spec FILE`, "
            "`talkvid bench draw --spec FILE`."
        )
    if len(short) > len(by_budget):
        which = "this bench" if not by_budget else f"the other {len(short) - len(by_budget)}"
        notes.append(
            f"The data, not the hold-out budget, limited {which}: too few eligible clips "
            f"({report['clip_seconds']:g} s or longer, with the stratum's label"
            f"{' and a known speaker' if report['require_person'] else ''}) or too few different videos and speakers "
            "for the caps per video and speaker."
        )
    return " ".join(notes) or None


def bench_candidates(
    session: Session, profile_id: str, min_language_probability: float = 0.5, generation: str = CURRENT_GENERATION, as_of: dt.datetime | None = None
) -> list[BenchCandidate]:
    """The clips of the released generation (catalog.queries.generation_condition) of the videos crawled by `as_of`
    (None: all) a profile passed, with their resolved labels (display values) and speaker."""
    query = (
        select(Clip.id, Clip.video_id, Clip.fps, Clip.start_frame, Clip.end_frame)
        .join(Decision, Decision.clip_id == Clip.id)
        .where(Decision.profile_id == profile_id, Decision.status == DecisionStatus.PASSED, generation_condition(generation), crawled_by(as_of))
    )
    clips = select_in(session, query, Clip.id, None)
    labels = resolve_labels(session, {c.id: c.video_id for c in clips}, min_language_probability)
    return [BenchCandidate.of(clip, labels[clip.id]) for clip in sorted(clips, key=lambda c: c.id)]


def candidates_hash(candidates: list[BenchCandidate]) -> str:
    """What a draw depends on besides spec and seed: the candidates with their windows, labels and speakers."""
    return content_hash([[c.clip_id, c.video_id, c.person, c.fps, c.start_frame, c.end_frame, c.labels] for c in sorted(candidates, key=lambda c: c.clip_id)])


def store_draw(session: Session, profile_id: str, result: BenchDraw, candidates: list[BenchCandidate], run_id: str) -> str:
    """Store a draw (replacing the one of the same profile, spec and seed); returns its id."""
    bench_id = make_id("bench", profile_id, result.spec.content_hash, result.seed)
    upsert(session, Bench, [dict(
        id=bench_id, profile_id=profile_id, spec_name=result.spec.name, spec_hash=result.spec.content_hash, spec=result.spec.body(),
        seed=result.seed, candidates_hash=candidates_hash(candidates), report=result.report(), run_id=run_id,
    )], ["profile_id", "spec_hash", "seed"])  # fmt: skip
    picks = [dict(id=make_id("bench_clip", bench_id, p.candidate.clip_id), bench_id=bench_id, clip_id=p.candidate.clip_id, subbench=p.subbenchmark,
                  stratum=p.stratum, start_frame=p.start_frame, end_frame=p.end_frame, person=p.candidate.person) for p in result.picks]  # fmt: skip
    session.execute(delete(BenchClip).where(BenchClip.bench_id == bench_id, BenchClip.clip_id.not_in([p["clip_id"] for p in picks])))
    upsert(session, BenchClip, picks, ["bench_id", "clip_id"])
    return bench_id


def stored_draw(session: Session, profile: Profile, spec: BenchSpec, seed: int, candidates: list[BenchCandidate], spec_ref: str | None = None) -> BenchDraw:
    """The stored draw of `spec` and `seed` from `profile`'s passed clips (`candidates`, as the catalog holds them
    now); a TalkvidError naming the command to run when there is none or it was drawn from other candidates."""
    profile_id = profile_row_id(session, profile)
    command = f"talkvid bench draw --profile {profile.name} --spec {spec_ref or spec.name} --seed {seed}"
    row = session.scalar(select(Bench).where(Bench.profile_id == profile_id, Bench.spec_hash == spec.content_hash, Bench.seed == seed))
    if row is None:
        raise TalkvidError(
            f"no bench draw of spec {spec.name} (content hash {spec.content_hash}) with seed {seed} for profile {profile.name} "
            f"(content hash {profile.content_hash}): run `{command}` first"
        )
    if row.candidates_hash != candidates_hash(candidates):
        raise TalkvidError(
            f"the bench draw of spec {spec.name} with seed {seed} for profile {profile.name} was drawn before the decisions, "
            f"labels or speakers of its clips changed: run `{command}` again"
        )
    by_id = {c.clip_id: c for c in candidates}
    rows = session.scalars(select(BenchClip).where(BenchClip.bench_id == row.id)).all()
    picks = [BenchPick(r.subbench, r.stratum, by_id[r.clip_id], r.start_frame, r.end_frame) for r in rows]
    order = {name: (i, list(sub.strata)) for i, (name, sub) in enumerate(spec.subbenchmarks.items())}
    picks.sort(key=lambda p: (order[p.subbenchmark][0], order[p.subbenchmark][1].index(p.stratum), p.candidate.clip_id))
    held = row.report["held_out"]
    return BenchDraw(
        spec=spec,
        seed=seed,
        picks=picks,
        strata=row.report["strata"],
        held_out_videos={p.candidate.video_id for p in picks},
        held_out_persons={r.person for r in rows if r.person},
        held_out_clips=held["clips"],
        held_out_budget=held["budget"],
        candidates=held["candidates"],
    )


def draw_bench(
    ctx: Context, profile: Profile | str | Path, spec: BenchSpec | str | Path | None = None, seed: int | None = None, as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """The bench stage (`talkvid bench draw`): draw the bench from the profile's passed clips (of the videos crawled
    by `as_of`, the release's date; None: all), store it in the catalog and report requested vs achieved per
    stratum. Drawing again with the same inputs stores the same draw."""
    profile = as_profile(profile)
    spec = load_bench_spec(spec or ctx.config.curate.bench_spec or "talkvid-bench")
    seed = ctx.config.curate.seed if seed is None else seed
    params = {"profile": profile.name, "profile_hash": profile.content_hash, "spec": spec.name, "spec_hash": spec.content_hash, "seed": seed,
              "as_of": as_of.isoformat() if as_of else None}  # fmt: skip
    with ctx.run("bench", params) as run:
        with ctx.sessions() as session:
            profile_id = profile_row_id(session, profile)
            candidates = bench_candidates(session, profile_id, ctx.config.curate.labels.min_language_probability, ctx.config.export.generation, as_of)
            result = draw(candidates, spec, seed)
            bench_id = store_draw(session, profile_id, result, candidates, run.id)
            session.commit()
        report = result.report()
        run.count("candidates", len(candidates))
        run.count("requested", report["requested"])
        run.count("achieved", report["achieved"])
        return {"run_id": run.id, "bench_id": bench_id, "profile": profile.name, "profile_hash": profile.content_hash, **report}
