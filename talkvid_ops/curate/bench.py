"""The bench: a balanced, leak-free held-out set drawn from the clips a profile passed, by a YAML spec.

A spec names sub-benchmarks (each balances one label: age group, gender, ethnicity or language) with the clips
requested per stratum, and the clip length. The draw is deterministic for a seed: candidates are ordered by a hash
of (seed, clip id), so adding clips to the catalog does not reshuffle the others. Scarce strata draw first; a clip
serves one sub-benchmark; caps per video and per speaker keep the bench diverse. Clips labelled Unknown never count.

Held out are whole source videos and whole speakers: the training release leaves out every clip of a video or a
person that has a clip in the bench (TalkVid's released bench shares source videos with its training set). A budget
(`max_held_out_share` of the passed clips) keeps a bench from eating a small catalog's training set: a clip whose
hold-out would exceed it is passed over and counted in its stratum's report row.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, Decision, Profile as ProfileRow
from talkvid_ops.curate.labels import AGE_GROUPS, ETHNICITIES, GENDERS, LANGUAGES, UNKNOWN, resolve_labels, select_in
from talkvid_ops.curate.profiles import Profile, as_profile
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import content_hash
from talkvid_ops.yamlfile import load_shipped_or_file

SHIPPED_PACKAGE = "talkvid_ops.curate.shipped_specs"
STRATA_VALUES = {"age_group": AGE_GROUPS, "gender": GENDERS, "ethnicity": ETHNICITIES, "language": LANGUAGES}


class SubBenchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["age_group", "gender", "ethnicity", "language"]
    strata: dict[str, int] = Field(min_length=1, description="label value -> clips requested")

    @model_validator(mode="after")
    def _check(self) -> "SubBenchmark":
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


def load_bench_spec(spec: "str | Path | BenchSpec") -> BenchSpec:
    """A shipped spec by name, a YAML file by path, or a spec as is."""
    if isinstance(spec, BenchSpec):
        return spec
    return load_shipped_or_file(BenchSpec, spec, SHIPPED_PACKAGE, "bench spec", "a mapping with name and subbenchmarks")


def profile_row_id(session: Session, profile: "Profile | str | Path") -> str:
    """The catalog row of a profile's exact content: decisions belong to a name and content hash."""
    profile = as_profile(profile)
    row_id = session.scalar(
        select(ProfileRow.id).where(ProfileRow.name == profile.name, ProfileRow.content_hash == profile.content_hash)
    )
    if row_id is None:
        raise TalkvidError(
            f"no decisions for profile {profile.name} (content hash {profile.content_hash}): "
            f"run `talkvid decide --profile {profile.name}` first"
        )
    return row_id


def passed_clip_ids(session: Session, profile_id: str) -> list[str]:
    return sorted(session.scalars(select(Decision.clip_id).where(Decision.profile_id == profile_id, Decision.status == "passed")))


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
    def of(cls, clip, labels: dict) -> "BenchCandidate":
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

    @property
    def shortfalls(self) -> list[str]:
        return [
            f"{row['subbenchmark']}/{row['stratum']}: {row['achieved']} of {row['requested']} "
            f"({row['shortfall']} short, eligible {row['eligible']}"
            + (f", {row['over_budget']} over the hold-out budget)" if row["over_budget"] else ")")
            for row in self.strata
            if row["shortfall"]
        ]

    def holds_out(self, video_id: str, person: str | None) -> bool:
        return video_id in self.held_out_videos or (person is not None and person in self.held_out_persons)

    def report(self) -> dict[str, Any]:
        return {
            "spec": self.spec.name,
            "spec_hash": self.spec.content_hash,
            "seed": self.seed,
            "clip_seconds": self.spec.clip_seconds,
            "requested": sum(r["requested"] for r in self.strata),
            "achieved": sum(r["achieved"] for r in self.strata),
            "strata": self.strata,
            "shortfalls": self.shortfalls,
            "held_out": {"videos": len(self.held_out_videos), "persons": len(self.held_out_persons),
                         "clips": self.held_out_clips, "budget": self.held_out_budget},  # fmt: skip
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
            requested, taken, over_budget = sub.strata[stratum], 0, 0
            for candidate in pools[stratum]:
                if taken == requested:
                    break
                if not allowed(candidate):
                    continue
                if budget is not None and len(held | taken_from_training(candidate)) > budget:
                    over_budget += 1
                    continue
                held |= taken_from_training(candidate)
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
            }
    strata = [rows[(name, s)] for name, sub in spec.subbenchmarks.items() for s in sub.strata]
    picks.sort(key=lambda p: (list(spec.subbenchmarks).index(p.subbenchmark), list(spec.subbenchmarks[p.subbenchmark].strata).index(p.stratum), p.candidate.clip_id))
    return BenchDraw(
        spec=spec,
        seed=seed,
        picks=picks,
        strata=strata,
        held_out_videos={p.candidate.video_id for p in picks},
        held_out_persons={p.candidate.person for p in picks if p.candidate.person},
        held_out_clips=len(held),
        held_out_budget=budget,
    )


def bench_candidates(session: Session, profile_id: str, min_language_probability: float = 0.5) -> list[BenchCandidate]:
    """The clips a profile passed, with their resolved labels (display values) and speaker."""
    query = select(Clip.id, Clip.video_id, Clip.fps, Clip.start_frame, Clip.end_frame).join(
        Decision, Decision.clip_id == Clip.id
    ).where(Decision.profile_id == profile_id, Decision.status == "passed")
    clips = select_in(session, query, Clip.id, None)
    labels = resolve_labels(session, {c.id: c.video_id for c in clips}, min_language_probability)
    return [BenchCandidate.of(clip, labels[clip.id]) for clip in sorted(clips, key=lambda c: c.id)]


def draw_bench(ctx, profile: "Profile | str", spec: "BenchSpec | str | None" = None, seed: int | None = None) -> dict[str, Any]:
    """`talkvid bench draw`: draw the bench from the catalog and report requested vs achieved (nothing written
    but the run record; an export writes the bench with its release)."""
    profile = as_profile(profile)
    spec = load_bench_spec(spec or ctx.config.export.bench_spec or "talkvid-bench")
    seed = ctx.config.export.seed if seed is None else seed
    params = {"profile": profile.name, "profile_hash": profile.content_hash, "spec": spec.name, "spec_hash": spec.content_hash, "seed": seed}
    with ctx.run("bench", params) as run:
        with ctx.sessions() as session:
            candidates = bench_candidates(session, profile_row_id(session, profile), ctx.config.export.labels.min_language_probability)
        result = draw(candidates, spec, seed)
        report = result.report()
        run.count("candidates", len(candidates))
        run.count("requested", report["requested"])
        run.count("achieved", report["achieved"])
        return {"run_id": run.id, "profile": profile.name, "profile_hash": profile.content_hash, **report}
