"""The export stage: a release of the clips a profile passed, with a leak-free bench held out.

Layout of a release directory:
    talkvid.json                 training clips in TalkVid's released record shape
    clips.jsonl, clips.parquet   every candidate clip: raw scores, decision, failing criteria, labels, lineage, split
    clips/<id>.mp4               training clips cut on exact frames (H.264 + AAC)
    crops/<id>.mp4               face-centred square crops (format `crops`)
    webdataset/train-NNNNNN.tar  WebDataset shards: <id>.mp4 + <id>.json
    bench/<sub>.json, bench/report.json, bench/clips/<sub>/<id>.mp4 (and bench/crops/...)
    README.md                    the dataset card
    report.html                  the self-contained report with plots
    manifest.json                the release metadata and the sha256 of every other file

Everything is sorted and carries no export-time timestamp and no path of the output folder, so the same catalog,
profile, spec and seed give the same bytes (values from the catalog, such as a video's URL, appear as stored).
The `release` row records the files and counts (and `out_dir`: the folder as named, the link of `publish`);
`release_clip` rows record each clip's split and bench stratum.

A release is built whole in a staging folder and switched in atomically (`talkvid_ops.export.publish`): readers see
the previous release or the new one, never a mix; a second export into the same folder waits for the first; a full
disk is one TalkvidError and the previous release stays. manifest.json's `media` records, per clip and crop file,
the hash of the parameters it was cut with and its size: a later export hard-links such a file from the previous
release instead of cutting it again, after checking its size and sha256.

An export only writes: the labels, speakers, face boxes (crops) and bench draw it needs are what the curate stages
stored (`talkvid labels estimate`, `talkvid speakers`, `talkvid bench draw`); a missing bench draw or missing
decisions are one error naming the command to run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from talkvid_ops.catalog.models import Release, ReleaseClip, Source, Video
from talkvid_ops.catalog.runs import RunRecorder, code_version
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config.export import ALL_FORMATS, DEFAULT_FORMATS
from talkvid_ops.context import Context
from talkvid_ops.curate.bench import BenchCandidate, BenchDraw, BenchSpec, load_bench_spec, stored_draw
from talkvid_ops.curate.decide import profile_row_id
from talkvid_ops.curate.face_models import StoredFace
from talkvid_ops.curate.faces import stored_faces
from talkvid_ops.curate.labels.vocabulary import UNKNOWN
from talkvid_ops.curate.profiles import Profile, as_profile
from talkvid_ops.curate.validation.agreement import validation_summary
from talkvid_ops.errors import ConfigError, TalkvidError
from talkvid_ops.export.publish import MANIFEST, ReleaseFolder, checkpoint, out_of_space, write_json, write_text
from talkvid_ops.export.records import ClipRecord, candidate_row, dataset_statistics, load_records, score_sources, talkvid_record
from talkvid_ops.export.tables import write_parquet
from talkvid_ops.ids import content_hash, make_id
from talkvid_ops.media import cut as media
from talkvid_ops.media.clip_faces import face_centred_square, source_media
from talkvid_ops.media.hashing import sha256_file

STRATA_LABELS = ("language", "age_group", "gender", "ethnicity")
RELEASE_LABELS = ("language", "age_group", "gender", "ethnicity", "person", "category")


def resolve_formats(formats: list[str] | None) -> list[str]:
    chosen = list(formats or DEFAULT_FORMATS)
    unknown = sorted(set(chosen) - set(ALL_FORMATS))
    if unknown:
        raise ConfigError(f"unknown export format(s) {', '.join(unknown)} (known: {', '.join(ALL_FORMATS)})")
    return [f for f in ALL_FORMATS if f in chosen]


def _hours(records: list[ClipRecord]) -> float:
    return round(sum(r.clip.duration for r in records) / 3600, 6)


def assign_splits(records: list[ClipRecord], bench: BenchDraw | None) -> None:
    picked = {p.candidate.clip_id: (p.subbenchmark, p.stratum) for p in bench.picks} if bench else {}
    for record in records:
        status = record.decision.status
        person = record.label("person")
        if status != DecisionStatus.PASSED:
            record.split = "failed" if status == DecisionStatus.FAILED else "undecided"
        elif record.id in picked:
            record.split, record.bench = "bench", picked[record.id]
        elif bench and bench.holds_out(record.clip.video_id, None if person == UNKNOWN else person):
            record.split = "held_out"
        else:
            record.split = "train"


class _Writer:
    """Writes one release's staging folder and remembers every file it wrote (and the parameters of its media)."""

    def __init__(self, folder: ReleaseFolder, ctx: Context, run: RunRecorder, faces: dict[str, list[StoredFace]]):
        self.folder, self.out, self.config, self.run, self.faces = folder, folder.staging, ctx.config.export, run, faces
        self.settings = ctx.settings
        self.written: set[Path] = set()
        self.media: dict[str, dict[str, Any]] = {}  # relative path -> {"key": parameters hash, "size": bytes}
        self._audio: dict[str, bool] = {}

    def keep(self, path: Path) -> Path:
        self.written.add(path)
        return path

    def _source(self, video) -> Path:
        return source_media(self.settings, video)

    def _has_audio(self, video) -> bool:
        if video.id not in self._audio:
            self._audio[video.id] = video.has_audio if video.has_audio is not None else media.source_has_audio(self._source(video))
        return self._audio[video.id]

    def _encoding(self) -> dict[str, Any]:
        return {"preset": self.config.video_preset, "crf": self.config.video_crf, "audio_bitrate": self.config.audio_bitrate}

    def _media_file(self, out: Path, key: str, make) -> Path:
        """`out`, hard-linked from the previous release when it holds a whole file made with the same parameters
        `key`, else made by `make()`; recorded for the manifest's `media`."""
        rel = str(out.relative_to(self.out))
        old = self.folder.reusable(rel, key)
        if old is not None:
            self.folder.link_from_previous(old, out)
        else:
            make()
        self.media[rel] = {"key": key, "size": out.stat().st_size}
        checkpoint()
        return self.keep(out)

    def cut_key(self, record: ClipRecord, window: tuple[int, int]) -> str:
        """The catalog's parameters of a cut: the source file, the frame window and rate, the encoding."""
        video = record.video
        return content_hash({"cut": [video.id, video.sha256, video.size_bytes, list(window), record.clip.fps], "encoding": self._encoding()}, 32)

    def cut(self, record: ClipRecord, out: Path, window: tuple[int, int]) -> Path | None:
        """The clip's frames in `window` at `out`."""
        try:

            def make() -> None:
                clip = record.clip  # a window of the clip starts at the clip's presentation time plus its frames
                start = clip.start_time + (window[0] - clip.start_frame) / clip.fps
                end = clip.end_time if window[1] == clip.end_frame else start + (window[1] - window[0]) / clip.fps
                media.cut_clip(media.CutRequest(self._source(record.video), out, *window, clip.fps, self._has_audio(record.video), start, end), self.config)

            return self._media_file(out, self.cut_key(record, window), make)
        except TalkvidError as exc:
            if out_of_space(exc):
                raise
            self.run.error(record.id, str(exc), step="cut")
            return None

    def crop(self, record: ClipRecord, clip_file: Path, out: Path, window: tuple[int, int]) -> Path | None:
        """A face-centred square crop of the clip file, around the face boxes the face pass stored for the window
        (all of the clip's when none of its sampled frames falls inside)."""
        try:
            faces = self.faces.get(record.id)
            if not faces:
                raise TalkvidError("no stored face detections: run `talkvid labels estimate` or `talkvid speakers` first")
            start, end = (frame / record.clip.fps for frame in window)
            inside = [f for f in faces if start <= f.time < end] or faces
            square = face_centred_square([f.box for f in inside if f.box], inside[0].frame_size, self.config.crop_face_scale)
            if square is None:
                raise TalkvidError("no face found in the sampled frames: no crop")
            key = content_hash({"crop": [self.cut_key(record, window), list(square), self.config.crop_size], "encoding": self._encoding()}, 32)
            return self._media_file(out, key, lambda: media.crop_clip(clip_file, out, square, self.config))
        except TalkvidError as exc:  # no face or an encoder failure costs this clip its crop, not the release
            if out_of_space(exc):
                raise
            self.run.error(record.id, str(exc), step="crop")
            return None


def _by_stratum(records: list[ClipRecord]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    hours: dict[str, dict[str, float]] = {}
    clips: dict[str, dict[str, int]] = {}
    for name in STRATA_LABELS:
        h, n = defaultdict(float), defaultdict(int)
        for record in records:
            h[record.label(name)] += record.clip.duration / 3600
            n[record.label(name)] += 1
        hours[name] = {k: round(v, 6) for k, v in sorted(h.items())}
        clips[name] = dict(sorted(n.items()))
    return hours, clips


def _provenance_counts(records: list[ClipRecord]) -> dict[str, dict[str, int]]:
    """Per label name, how many clips got their value from which provenance ("none": no label, so Unknown)."""
    counts: dict[str, dict[str, int]] = {name: defaultdict(int) for name in RELEASE_LABELS}
    for record in records:
        for name in RELEASE_LABELS:
            label = record.labels.get(name)
            counts[name][label.provenance if label else "none"] += 1
    return {name: dict(sorted(c.items())) for name, c in counts.items()}


def _pass_rates(records: list[ClipRecord], criteria: list[str]) -> dict[str, dict[str, Any]]:
    rates = {}
    for criterion in criteria:
        evaluated = [r for r in records if criterion not in (r.decision.missing or [])]
        failed = sum(1 for r in evaluated if any(f["criterion"] == criterion for f in r.failures))
        rates[criterion] = {"evaluated": len(evaluated), "failed": failed,
                            "pass_rate": round(1 - failed / len(evaluated), 6) if evaluated else None}  # fmt: skip
    return rates


def _catalog_context(session, records: list[ClipRecord]) -> dict[str, Any]:
    """Sources, licences and rot of the videos behind the released (train + bench) clips."""
    released = [r for r in records if r.split in ("train", "bench")]
    video_ids = sorted({r.video.id for r in released})
    videos = {v.id: v for v in session.scalars(select(Video).where(Video.id.in_(video_ids)))} if video_ids else {}
    sources = {s.id: s for s in session.scalars(select(Source).where(Source.id.in_(sorted({v.source_id for v in videos.values()}))))} if videos else {}
    per_source, per_licence = defaultdict(list), defaultdict(list)
    for record in released:
        per_source[record.video.source_id].append(record)
        per_licence[record.video.license or "unknown"].append(record)
    availability = defaultdict(int)
    for video in videos.values():
        availability[video.availability or "unknown"] += 1
    checked = [v.availability_checked_at for v in videos.values() if v.availability_checked_at]
    return {
        "sources": [
            {
                "id": sid,
                "kind": sources[sid].kind,
                "name": sources[sid].name,
                "locator": sources[sid].locator,
                "videos": len({r.video.id for r in recs}),
                "clips": len(recs),
                "hours": _hours(recs),
            }  # fmt: skip
            for sid, recs in sorted(per_source.items())
        ],
        "licences": [
            {"license": lic, "videos": len({r.video.id for r in recs}), "clips": len(recs), "hours": _hours(recs)} for lic, recs in sorted(per_licence.items())
        ],
        "rot": {
            "videos": len(videos),
            "available": availability.get("available", 0),
            "gone": availability.get("gone", 0),
            "unknown": sum(n for k, n in availability.items() if k not in ("available", "gone")),
            "last_checked": max(checked).date().isoformat() if checked else None,
        },
    }


def export(ctx: Context, profile: Profile | str | Path, out_dir: str | Path, formats: list[str] | None = None,
           bench_spec: BenchSpec | str | Path | None = None, seed: int = 0, name: str | None = None,
           as_of: dt.datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Write a release of `profile`'s passed clips to `out_dir` from what the catalog holds (see the module docstring).

    `formats`: any of talkvid-json, parquet, jsonl, clips, crops, webdataset, bench (default: all but crops).
    `bench_spec`: a spec, shipped name or YAML path (default: the configured one, `curate.bench_spec`); the bench
    drawn by `talkvid bench draw` with this spec and `seed` is written, and its clips, their whole source videos and
    their speakers are held out of the training release.
    `as_of`: release the catalog as it stood then: the clips of the videos crawled (downloaded or ingested) by then,
    in their current generation, with today's decisions (a dated curate run's logical date); None: every clip.
    """
    config = ctx.config.export
    profile = as_profile(profile)
    formats = resolve_formats(formats or config.formats)
    spec_ref = bench_spec if bench_spec is not None else ctx.config.curate.bench_spec
    spec = load_bench_spec(spec_ref) if spec_ref else None
    if "bench" in formats and spec is None:
        raise ConfigError("format bench needs a bench spec (--bench-spec or curate.bench_spec)")
    out = _target(out_dir)
    name = name or f"{profile.name}-{profile.content_hash[:8]}" + (f"-{spec.name}-seed{seed}" if spec else "")
    with ctx.sessions() as session:  # no decisions or no bench draw: one clear error before any work
        profile_id = profile_row_id(session, profile)
        records = load_records(session, profile_id, ctx.config.curate.labels.min_language_probability, profile, config.generation, as_of)
        passed = [r for r in records if r.decision.status == DecisionStatus.PASSED]
        candidates = [BenchCandidate.of(r.clip, r.labels) for r in passed]
        bench = stored_draw(session, profile, spec, seed, candidates, None if isinstance(spec_ref, BenchSpec) else str(spec_ref)) if spec else None
        faces = stored_faces(session, [r.id for r in passed], ctx.config.curate.faces.frames_per_clip) if "crops" in formats else {}
    params = {"profile": profile.name, "profile_hash": profile.content_hash, "out_dir": str(out), "formats": formats,
              "bench_spec": spec.name if spec else None, "bench_spec_hash": spec.content_hash if spec else None,
              "seed": seed, "name": name, "as_of": as_of.isoformat() if as_of else None}  # fmt: skip
    with ctx.run("export", params) as run:
        release_id = make_id("release", name, profile_id, spec.content_hash if spec else None, seed, formats)
        assign_splits(records, bench)
        try:
            with ReleaseFolder(out, release_id) as folder:
                summary = _write_release(ctx, run, folder, records, profile, spec, bench, seed, formats, faces, name, params["as_of"])
                folder.publish()
        except (OSError, TalkvidError) as exc:
            if not out_of_space(exc):
                raise
            raise TalkvidError(
                f"disk full: no space left on the device of {out.parent} while writing release {name}; nothing was published, {out} is as it was"
            ) from None
        checkpoint()
        released = [r for r in records if r.split in ("train", "bench")]
        with ctx.sessions() as session:
            upsert(session, Release, [dict(
                id=release_id, name=name, profile_id=profile_id, bench_spec=spec.body() if spec else None,
                bench_spec_hash=spec.content_hash if spec else None, seed=seed, formats=formats, out_dir=str(out),
                files=summary["files"], counts=summary["counts"], code_version=summary["code_version"], run_id=run.id,
            )], ["id"])  # fmt: skip
            session.execute(delete(ReleaseClip).where(ReleaseClip.release_id == release_id))
            membership = [dict(release_id=release_id, clip_id=r.id, split=r.split, subbench=r.bench[0] if r.bench else None,
                               stratum=r.bench[1] if r.bench else None) for r in released]  # fmt: skip
            if membership:
                session.execute(ReleaseClip.__table__.insert(), membership)
            session.commit()
        for key, value in summary["counts"].items():
            run.count(key, value)
        return {
            "run_id": run.id,
            "release_id": release_id,
            "name": name,
            "out_dir": str(out),
            "paths": {k: str(out / v) for k, v in sorted(summary["paths"].items())},
            "counts": summary["counts"],
            "shortfalls": bench.shortfalls if bench else [],
            "errors": list(run.errors),
        }


def _target(out_dir: str | Path) -> Path:
    """The release folder as named (a link once published): absolute, its parent's links resolved, itself not."""
    path = Path(os.path.abspath(out_dir))
    return path.parent.resolve() / path.name


def _write_release(ctx: Context, run: RunRecorder, folder: ReleaseFolder, records: list[ClipRecord], profile: Profile, spec: BenchSpec | None,
                   bench: BenchDraw | None, seed: int, formats: list[str], faces: dict[str, list[StoredFace]], name: str,
                   as_of: str | None) -> dict[str, Any]:  # fmt: skip
    """Every file of the release into the staging folder, manifest.json last; the manifest's summary (with the
    relative `paths` of the main files)."""
    from talkvid_ops.export.card import render_card
    from talkvid_ops.export.report import render_report

    config, out = ctx.config.export, folder.staging
    by_id = {r.id: r for r in records}
    writer = _Writer(folder, ctx, run, faces)
    files: dict[str, dict[str, Path | None]] = defaultdict(dict)  # clip id -> kind -> file

    if {"clips", "webdataset", "crops"} & set(formats):
        train = [r for r in records if r.split == "train"]
        for record in run.progress(train, len(train), "clips cut"):
            clip_file = writer.cut(record, out / "clips" / f"{record.id}.mp4", (record.clip.start_frame, record.clip.end_frame))
            if clip_file is None:
                record.split = "media_failed"
                continue
            files[record.id]["clip"] = clip_file
            if "crops" in formats:
                files[record.id]["crop"] = writer.crop(record, clip_file, out / "crops" / f"{record.id}.mp4", (record.clip.start_frame, record.clip.end_frame))
        if "bench" in formats:
            for pick in bench.picks:
                record, window = by_id[pick.candidate.clip_id], (pick.start_frame, pick.end_frame)
                clip_file = writer.cut(record, out / "bench" / "clips" / pick.subbenchmark / f"{record.id}.mp4", window)
                files[record.id]["clip"] = clip_file
                if clip_file and "crops" in formats:
                    files[record.id]["crop"] = writer.crop(record, clip_file, out / "bench" / "crops" / pick.subbenchmark / f"{record.id}.mp4", window)

    train = [r for r in records if r.split == "train"]
    train_records = [talkvid_record(r, strict=config.strict) for r in train]
    paths: dict[str, Path] = {}
    if "talkvid-json" in formats:
        paths["talkvid_json"] = writer.keep(write_json(train_records, out / "talkvid.json", sort_keys=False))
    rows = [candidate_row(r) for r in records]
    if "jsonl" in formats:
        text = "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
        paths["clips_jsonl"] = writer.keep(write_text(text, out / "clips.jsonl"))
    if "parquet" in formats:
        paths["clips_parquet"] = writer.keep(write_parquet(rows, out / "clips.parquet", RELEASE_LABELS))
    checkpoint()
    if "webdataset" in formats:
        samples = [(r.id, files[r.id]["clip"], rec) for r, rec in zip(train, train_records)]
        for shard in media.write_shards(samples, out / "webdataset", "train", config.shard_max_samples):
            writer.keep(shard)
    if "bench" in formats:
        paths["bench"] = out / "bench"
        _write_bench(writer, bench, by_id, files, out)
    checkpoint()

    summary = release_summary(name, folder.release_id, records, profile, spec, bench, seed, formats, as_of)
    with ctx.sessions() as session:
        summary.update(_catalog_context(session, records))
        summary["validation"] = validation_summary(session)
    paths["report"] = writer.keep(write_text(render_report(summary, records, profile, ctx.settings.data_dir), out / "report.html"))
    paths["card"] = out / "README.md"
    writer.keep(write_text(render_card(summary, [str(p.relative_to(out)) for p in writer.written | {paths["card"]}] + [MANIFEST]), paths["card"]))
    checkpoint()
    summary["files"] = {str(p.relative_to(out)): sha256_file(p) for p in sorted(writer.written)}
    summary["media"] = dict(sorted(writer.media.items()))
    paths["manifest"] = write_json(summary, out / MANIFEST)
    summary["files"][MANIFEST] = sha256_file(paths["manifest"])
    summary["paths"] = {key: str(path.relative_to(out)) for key, path in paths.items()}
    return summary


def release_summary(name: str, release_id: str, records: list[ClipRecord], profile: Profile, spec: BenchSpec | None, bench: BenchDraw | None,
                    seed: int, formats: list[str], as_of: str | None = None) -> dict[str, Any]:  # fmt: skip
    """What the manifest, card and report say of a release, from its records alone (`_write_release` adds the
    catalog's context: sources, rot, validation)."""
    passed = [r for r in records if r.decision.status == DecisionStatus.PASSED]
    train = [r for r in records if r.split == "train"]
    hours, clips_by = _by_stratum(train)
    released = [r for r in records if r.split in ("train", "bench")]
    return {
        "name": name,
        "release_id": release_id,
        "profile": {"name": profile.name, "content_hash": profile.content_hash, "description": profile.description},
        "bench_spec": {"name": spec.name, "content_hash": spec.content_hash} if spec else None,
        "seed": seed,
        "formats": formats,
        "as_of": as_of,  # the catalog as of then (a dated run's logical date); None: all of it
        "code_version": code_version(),
        "counts": {
            "candidates": len(records),
            **{status.value: sum(1 for r in records if r.decision.status == status) for status in DecisionStatus},
            **{split: sum(1 for r in records if r.split == split) for split in ("train", "bench", "held_out", "media_failed")},
            "persons_train": len({r.label("person") for r in train} - {UNKNOWN}),
            "videos_train": len({r.video.id for r in train}),
        },
        "hours": {
            "candidates": _hours(records),
            "passed": _hours(passed),
            "train": _hours(train),
            "bench": round(sum((p.end_frame - p.start_frame) / p.candidate.fps for p in bench.picks) / 3600, 6) if bench else 0.0,
        },  # fmt: skip
        "train_hours_by": hours,
        "train_clips_by": clips_by,
        "label_provenance": _provenance_counts(released),
        "score_sources": score_sources(released),
        "pass_rates": _pass_rates(records, list(profile.criteria)),
        "statistics": dataset_statistics(train, records),
        "bench": bench.report() if bench else None,
    }


def _write_bench(writer: _Writer, bench: BenchDraw, by_id: dict[str, ClipRecord], files, out: Path) -> None:
    for sub_name, sub in bench.spec.subbenchmarks.items():
        clips = []
        for pick in (p for p in bench.picks if p.subbenchmark == sub_name):
            record = by_id[pick.candidate.clip_id]
            entry = talkvid_record(record, (pick.start_frame, pick.end_frame), writer.config.strict)
            entry["stratum"] = pick.stratum
            for kind in ("clip", "crop"):
                path = files[record.id].get(kind)
                entry[f"{kind}_file"] = str(path.relative_to(out)) if path else None
            clips.append(entry)
        manifest = {
            "subbenchmark": sub_name,
            "label": sub.label,
            "spec": bench.spec.name,
            "spec_hash": bench.spec.content_hash,
            "seed": bench.seed,
            "clip_seconds": bench.spec.clip_seconds,
            "strata": [row for row in bench.strata if row["subbenchmark"] == sub_name],
            "clips": clips,
        }
        writer.keep(write_json(manifest, out / "bench" / f"{sub_name}.json", sort_keys=False))
    writer.keep(write_json(bench.report(), out / "bench" / "report.json"))
