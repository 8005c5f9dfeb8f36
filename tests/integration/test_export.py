"""Exports: byte-identical manifests for the same inputs, talkvid.json in TalkVid's released shape, every candidate in
clips.parquet/.jsonl, clips cut on exact frames, crops, WebDataset shards, and the release rows."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import tarfile
from pathlib import Path

import av
import jsonschema
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import delete, select, update

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import BenchClip, ClipFace, FaceEmbedding, Label, Release, ReleaseClip, Run, Video
from talkvid_ops.cli import cli
from talkvid_ops.curate import bench as bench_module
from talkvid_ops.curate.bench import draw_bench
from talkvid_ops.curate.labels.annotations import import_labels
from talkvid_ops.curate.labels.stage import estimate_labels
from talkvid_ops.curate.profiles import load_profile
from talkvid_ops.curate.speakers import assign_speakers
from talkvid_ops.errors import ConfigError, TalkvidError
from talkvid_ops.export.release import export
from talkvid_ops.media import sampler
from tests.release_catalog import (
    PROFILE,
    SMALL_SPEC,
    SMALL_SPEC_SHORTFALLS,
    build_people_catalog,
    cli_catalog,
    copy_sqlite,
    draw_and_export,
    estimated_media_catalog,
    make_context,
)

HEAD_SCORES = ["avg_movement", "min_movement", "avg_rotation", "min_rotation", "avg_completeness", "min_completeness",
               "avg_resolution", "min_resolution", "avg_orientation", "min_orientation"]  # fmt: skip
INFO_KEYS = ["Person ID", "Ethnicity", "Age Group", "Gender", "Video Link", "Language", "Video Category"]
# TalkVid's released per-clip record, from the field list in talkvid-reference.md
TALKVID_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "height",
            "width",
            "fps",
            "start-time",
            "start-frame",
            "end-time",
            "end-frame",
            "durations",
            "info",
            "description",
            "dover_scores",
            "cotracker_ratio",
            "head_detail",
        ],  # fmt: skip
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "height": {"type": "integer", "minimum": 1},
            "width": {"type": "integer", "minimum": 1},
            "fps": {"type": "number", "exclusiveMinimum": 0},
            "start-time": {"type": "number", "minimum": 0},
            "start-frame": {"type": "integer", "minimum": 0},
            "end-time": {"type": "number", "minimum": 0},
            "end-frame": {"type": "integer", "minimum": 1},
            "durations": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{3}s$"},
            "info": {
                "type": "object",
                "additionalProperties": False,
                "required": INFO_KEYS,
                "properties": {key: {"type": "string"} for key in INFO_KEYS},
            },  # fmt: skip
            "description": {"type": ["string", "null"]},
            "dover_scores": {"type": ["number", "null"]},
            "cotracker_ratio": {"type": ["number", "null"]},
            "head_detail": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scores", "passed"],
                "properties": {
                    "scores": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": HEAD_SCORES,
                        "properties": {m: {"type": "number"} for m in HEAD_SCORES},
                    },
                    "passed": {"type": ["boolean", "null"]},
                },  # fmt: skip
            },
        },
    },
}
MANIFESTS_ONLY = ["talkvid-json", "parquet", "jsonl", "bench"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _talkvid_shape(records: list[dict]) -> list[dict]:
    """The records without the one key a non-strict export adds after TalkVid's fields."""
    return [{k: v for k, v in r.items() if k != "talkvid_provenance"} for r in records]


def _check_talkvid_json(path: Path, strict: bool = False) -> list[dict]:
    records = json.loads(path.read_text())
    jsonschema.validate(_talkvid_shape(records), TALKVID_SCHEMA)
    for r in records:
        assert float(r["durations"][:-1]) == pytest.approx((r["end-frame"] - r["start-frame"]) / r["fps"], abs=0.0005)
        # the released field order, then (unless strict) the provenance key
        assert list(r) == list(TALKVID_SCHEMA["items"]["required"]) + ([] if strict else ["talkvid_provenance"])
        assert r["info"]["Gender"] in ("Male", "Female", "Unknown") and list(r["head_detail"]["scores"]) == HEAD_SCORES
    return records


def _assert_honest_names(records: list[dict]) -> None:
    """A CPU run: TalkVid's DOVER and CoTracker fields are null and the provenance says so; criteria name their rule."""
    for r in records:
        assert r["dover_scores"] is None and r["cotracker_ratio"] is None, r["id"]
        provenance = r["talkvid_provenance"]
        assert provenance["dover_scores"] is None and provenance["cotracker_ratio"] is None
        assert provenance["head_detail"]["backend"] == "dlib" and provenance["profile"] == PROFILE
        assert provenance["criteria"]["quality"]["backend"] == "classical" and provenance["criteria"]["quality"]["metric"] == "quality_technical"


def test_export_twice_gives_identical_manifests_and_leaks_nothing(catalog_url, tmp_path):
    ctx = make_context(catalog_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    first = draw_and_export(ctx, tmp_path / "one", built["spec"], formats=MANIFESTS_ONLY)
    second = export(ctx, PROFILE, tmp_path / "two", formats=MANIFESTS_ONLY, bench_spec=str(built["spec"]), seed=0)  # the stored draw
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert sorted(one) == ["README.md", "bench/age.json", "bench/gender.json", "bench/report.json", "clips.jsonl",
                           "clips.parquet", "manifest.json", "report.html", "talkvid.json"]  # fmt: skip
    assert one == two and first["release_id"] == second["release_id"] and first["run_id"] != second["run_id"]
    assert not any(str(tmp_path).encode() in content for content in one.values())  # no machine paths in a release
    other_seed = draw_and_export(ctx, tmp_path / "three", built["spec"], seed=5, formats=MANIFESTS_ONLY)
    assert other_seed["release_id"] != first["release_id"]

    out = tmp_path / "one"
    train = _check_talkvid_json(out / "talkvid.json")
    _assert_honest_names(train)
    rows = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    assert len(rows) == 19 and [r["clip_id"] for r in rows] == sorted(r["clip_id"] for r in rows)
    splits = {r["clip_id"]: r["split"] for r in rows}
    assert {r["id"] for r in train} == {c for c, s in splits.items() if s == "train"}
    assert sorted(set(splits.values())) == ["bench", "failed", "held_out", "train"]
    bench_people = set()
    bench_links = set()
    for sub in ("gender", "age"):
        manifest = json.loads((out / "bench" / f"{sub}.json").read_text())
        jsonschema.validate(
            _talkvid_shape([{k: v for k, v in c.items() if k not in ("stratum", "clip_file", "crop_file")} for c in manifest["clips"]]), TALKVID_SCHEMA
        )
        _assert_honest_names(manifest["clips"])
        assert all(c["durations"] == "5.000s" and splits[c["id"]] == "bench" for c in manifest["clips"])
        bench_people |= {c["info"]["Person ID"] for c in manifest["clips"]}
        bench_links |= {c["info"]["Video Link"] for c in manifest["clips"]}
    assert not bench_people & {r["info"]["Person ID"] for r in train}
    assert not bench_links & {r["info"]["Video Link"] for r in train}
    report = json.loads((out / "bench" / "report.json").read_text())
    assert report["shortfalls"] == first["shortfalls"] == SMALL_SPEC_SHORTFALLS

    row = rows[0]
    assert row["scores"]["classical.quality_technical"] is not None and row["lineage"]["decision_run_id"]
    assert set(row["labels"]["gender"]) == {"value", "stored", "provenance", "confidence", "origin", "subject"}
    table = pq.read_table(out / "clips.parquet")
    assert table.num_rows == 19 and table.column("clip_id").to_pylist() == [r["clip_id"] for r in rows]
    assert table.column("split").to_pylist() == [r["split"] for r in rows]
    assert table.column("score.dlib.avg_movement").to_pylist() == [r["scores"]["dlib.avg_movement"] for r in rows]
    assert table.column("label.gender.provenance").to_pylist() == [r["labels"].get("gender", {}).get("provenance") for r in rows]

    summary = json.loads((out / "manifest.json").read_text())
    assert summary["counts"]["train"] == len(train) and summary["counts"]["bench"] == 8
    released = len(train) + 8
    # a CPU run: no DOVER or CoTracker value, so TalkVid's fields are null (the CPU scores are in clips.jsonl/parquet)
    assert summary["score_sources"]["dover_scores"] == {"none": released} and summary["score_sources"]["cotracker_ratio"] == {"none": released}
    assert row["scores"]["lk.motion_visibility_code"] is not None and "score.lk.motion_visibility_code" in table.column_names
    with db.session_factory(catalog_url)() as session:
        release = session.get(Release, first["release_id"])
        assert release.out_dir == str(tmp_path / "two") and release.seed == 0 and release.bench_spec["name"] == "small"
        assert release.files["talkvid.json"] == summary["files"]["talkvid.json"] and "manifest.json" in release.files
        members = session.execute(select(ReleaseClip.clip_id, ReleaseClip.split, ReleaseClip.subbench, ReleaseClip.stratum)
                                  .where(ReleaseClip.release_id == release.id)).all()  # fmt: skip
    assert {m.clip_id for m in members if m.split == "train"} == {r["id"] for r in train}
    assert {(m.subbench, m.stratum) for m in members if m.split == "bench"} == {("gender", "male"), ("gender", "female"), ("age", "19-30"), ("age", "60+")}
    stats = summary["statistics"]  # the paper's statistics of the training release
    assert stats["clips"] == len(train) and sum(stats["duration_histogram"].values()) == len(train)
    assert stats["mean_duration_s"] == pytest.approx(np.mean([float(r["durations"][:-1]) for r in train]), abs=0.001)
    assert sum(v["clips"] for v in stats["resolution"].values()) == len(train) and set(stats["resolution"]) <= {"1080p", "2160p", "other"}
    assert sum(v["candidates"] for v in stats["pass_rate_by_source"].values()) == 19
    card = (out / "README.md").read_text()
    assert "### Resolution" in card and "### Upload year" in card and "### Pass rate per source (all candidates)" in card
    assert "talkvid-code (content hash" in card and "### Per gender" in card and SMALL_SPEC_SHORTFALLS[0] in card
    assert "**The data, not the hold-out budget, limited this bench: too few eligible clips (5 s or longer" in card
    assert "`talkvid crawl --recheck` updates it" in card  # the command that exists
    assert _card_files(card) == [("README.md", ""), ("talkvid.json", ""), ("clips.jsonl", ""), ("clips.parquet", ""),
                                 ("bench/", "3"), ("report.html", ""), ("manifest.json", "")]  # fmt: skip


def _card_files(card: str) -> list[tuple[str, str]]:
    """(entry, file count) rows of the card's Files section."""
    section = card.split("\n## Files\n", 1)[1]
    return re.findall(r"^\| `([^`]+)` \| (\d*) \|", section, flags=re.M)


def test_the_card_lists_what_the_release_holds(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    draw_and_export(ctx, tmp_path / "release", built["spec"], formats=["parquet"])
    card = (tmp_path / "release" / "README.md").read_text()
    listed = [entry for entry, _ in _card_files(card)]
    assert listed == ["README.md", "clips.parquet", "report.html", "manifest.json"]
    assert sorted(listed) == sorted(_files(tmp_path / "release"))
    assert "`clips.parquet` |  | every candidate clip" in card


def test_a_bench_the_hold_out_budget_kept_empty_says_so(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    build_people_catalog(ctx, tmp_path)
    tight = tmp_path / "tight.yaml"  # like a tiny catalog under the shipped 0.2: no clip fits the budget
    tight.write_text(SMALL_SPEC.replace("name: small", "name: tight").replace("max_held_out_share: null", "max_held_out_share: 0.05"))
    result = draw_and_export(ctx, tmp_path / "release", tight, formats=["jsonl", "bench"])
    out = tmp_path / "release"
    report = json.loads((out / "bench" / "report.json").read_text())
    assert (report["achieved"], report["limited_by"], [r["reason"] for r in report["strata"]]) == (0, ["hold-out budget"], ["hold-out budget"] * 4)
    assert report["held_out"] == {"budget": 0, "max_share": 0.05, "candidates": 18, "clips": 0, "videos": 0, "persons": 0}
    assert (
        report["shortfalls"] == result["shortfalls"]
        and report["shortfalls"][3] == "age/60+: 0 of 2 (2 short: hold-out budget; eligible 1, 1 over the hold-out budget)"
    )
    note = ("The hold-out budget, not the data, limited this bench: max_held_out_share 0.05 lets the bench take at most 0 "
            "of the 18 passed clips from training (its clips and every clip of their videos and speakers), so no clip could be drawn.")  # fmt: skip
    card = (out / "README.md").read_text()
    assert f"**{note}" in card and "`talkvid export --bench-spec FILE`" in card and "| gender | male | 3 | 0 | 3 | 8 | 8 | 0 | hold-out budget |" in card
    assert html.escape(note) in (out / "report.html").read_text()
    assert result["counts"]["held_out"] == 0 and result["counts"]["train"] == 18  # nothing taken from training


def test_a_release_shows_catalog_values_as_stored_and_nothing_of_where_it_was_written(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    local = Path("/srv/talkvid-media/P1 talk.mp4").as_uri()  # how `talkvid ingest` records a local file
    with db.session_factory(sqlite_url)() as session:
        session.execute(update(Video).where(Video.id == built["videos"]["P1-video0"]).values(url=local, availability_checked_at=dt.datetime(2025, 3, 4, 5, 6)))
        session.commit()
    for name in ("one", "two"):
        draw_and_export(ctx, tmp_path / name, built["spec"], formats=MANIFESTS_ONLY)
    one = _files(tmp_path / "one")
    assert one == _files(tmp_path / "two")  # no export-time timestamp, no path of the output folder
    assert not any(str(tmp_path / name).encode() in content for content in one.values() for name in ("one", "two"))
    rows = [json.loads(line) for line in one["clips.jsonl"].decode().splitlines()]
    assert {r["video_url"] for r in rows if r["video_id"] == built["videos"]["P1-video0"]} == {local}  # as stored
    assert "last re-check 2025-03-04" in one["README.md"].decode()


def _frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="gray").astype(np.float32))
            if limit and len(out) == limit:
                break
    return out


def test_media_release_cuts_exact_frames_crops_and_shards(tmp_path_factory, cache_dir, pyfeat_media, tmp_path, monkeypatch):
    catalog = estimated_media_catalog(tmp_path_factory, cache_dir, pyfeat_media)[0]
    decoded = []  # (source, start, end) of every face sampling's decode
    sample_frames = sampler.sample_frames
    monkeypatch.setattr(
        sampler, "sample_frames", lambda path, start, end, *rest: decoded.append((Path(path).name, start, end)) or sample_frames(path, start, end, *rest)
    )
    url = copy_sqlite(catalog.url, tmp_path / "copy.sqlite")
    ctx = make_context(url, tmp_path)
    (tmp_path / "grace.csv").write_text(f"clip_id,gender\n{catalog.clips['g1']},female\n")  # the estimate said male
    import_labels(ctx, tmp_path / "grace.csv")
    w1 = catalog.clips["w1"]
    with db.session_factory(url)() as session:  # as if w1 had passed after the curate stages ran
        session.execute(delete(Label).where(Label.subject_id == w1, Label.provenance == "estimated"))
        session.execute(delete(FaceEmbedding).where(FaceEmbedding.clip_id == w1))
        session.execute(delete(ClipFace).where(ClipFace.clip_id == w1))
        session.commit()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: media\nmax_held_out_share: 0.6\nsubbenchmarks:\n  gender: {label: gender, strata: {male: 1}}\n  age: {label: age_group, strata: {'0-19': 1}}\n"
    )
    labelled, described = estimate_labels(ctx, profile=PROFILE), assign_speakers(ctx, profile=PROFILE)
    formats = ["talkvid-json", "jsonl", "clips", "crops", "webdataset", "bench"]
    result = draw_and_export(ctx, tmp_path / "release", spec, formats=formats)
    out = tmp_path / "release"
    # labels, speakers and crops share one face pass per clip: only w1 lacked one, and it was decoded once for all
    # three; every other crop (g1, w2, the bench clip) is placed by the boxes the pass stored
    assert decoded == [(_source_of(catalog, "woman").name, 0.0, 6.0)]
    assert (labelled["clips_estimated"], labelled["clips_faced"], described["clips_embedded"], described.get("clips_faced", 0)) == (1, 1, 1, 0)
    with db.session_factory(url)() as session:
        faces = session.scalars(select(ClipFace).where(ClipFace.clip_id == w1).order_by(ClipFace.sample)).all()
    assert [f.sample for f in faces] == [0, 1, 2, 3, 4] and all(f.box and len(f.outputs) == 2 for f in faces)  # age/gender, descriptor
    assert [f.time for f in faces] == pytest.approx([0.6, 1.8, 3.0, 4.2, 5.4], abs=0.02)
    assert result["shortfalls"] == ["age/0-19: 0 of 1 (1 short: not enough eligible clips; eligible 0)"]
    counts = result["counts"]
    assert (counts["train"], counts["bench"], counts["held_out"], counts["media_failed"]) == (3, 1, 3, 0)

    records = {r["id"]: r for r in _check_talkvid_json(out / "talkvid.json")}
    name_of = {v: k for k, v in catalog.clips.items()}
    assert sorted(name_of[i] for i in records) == ["g1", "w1", "w2"]  # the man is held out from all three of his videos
    assert records[catalog.clips["w1"]]["info"]["Person ID"] == records[catalog.clips["w2"]]["info"]["Person ID"]
    assert records[catalog.clips["w1"]]["info"]["Gender"] == "Female"
    grace = records[catalog.clips["g1"]]["info"]
    assert (grace["Gender"], grace["Age Group"], grace["Video Link"]) == ("Female", "60+", "https://talks.example.invalid/grace")
    rows = {r["clip_id"]: r for r in map(json.loads, (out / "clips.jsonl").read_text().splitlines())}
    assert rows[catalog.clips["g1"]]["labels"]["gender"]["provenance"] == "human"
    assert rows[catalog.clips["w3"]]["failing_criteria"] == ["avg_movement", "quality"] and rows[catalog.clips["w3"]]["split"] == "failed"
    assert rows[catalog.clips["w4"]]["missing_criteria"] == ["face_consistency"] and rows[catalog.clips["w4"]]["split"] == "undecided"

    for clip_id, record in records.items():
        path = out / "clips" / f"{clip_id}.mp4"
        with av.open(str(path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
            duration = float(container.duration) / 1e6
        frames = _frames(path)
        assert len(frames) == record["end-frame"] - record["start-frame"]
        assert abs(duration - float(record["durations"][:-1])) <= 1 / record["fps"]
    w2 = records[catalog.clips["w2"]]  # starts at frame 150 of its source, not on a keyframe
    source_frames = _frames(_source_of(catalog, "woman"), 153)
    first = _frames(out / "clips" / f"{w2['id']}.mp4", 1)[0]
    differences = [float(np.abs(first - source_frames[i]).mean()) for i in (149, 150, 151)]
    assert differences[1] < min(differences[0], differences[2])

    bench_file = next((out / "bench" / "clips" / "gender").glob("*.mp4"))
    assert len(_frames(bench_file)) == 125 and name_of[bench_file.stem] in {"a1", "a2", "b1", "c1"}
    for crop in [*(out / "crops").glob("*.mp4"), *(out / "bench" / "crops").rglob("*.mp4")]:
        with av.open(str(crop)) as container:
            assert (container.streams.video[0].width, container.streams.video[0].height) == (512, 512)
    assert len(list((out / "crops").glob("*.mp4"))) == 3

    (shard,) = sorted((out / "webdataset").glob("*.tar"))
    with tarfile.open(shard) as tar:
        names = tar.getnames()
        assert names == [f"{key}.{ext}" for key in sorted(records) for ext in ("mp4", "json")]
        assert all(m.mtime == 0 and m.uname == "" for m in tar.getmembers())
        for key, record in records.items():
            assert json.loads(tar.extractfile(f"{key}.json").read()) == record
            assert tar.extractfile(f"{key}.mp4").read() == (out / "clips" / f"{key}.mp4").read_bytes()

    again = export(ctx, PROFILE, tmp_path / "again", formats=formats, bench_spec=str(spec))  # the stored draw and faces again
    assert again["release_id"] == result["release_id"]
    assert _files(tmp_path / "again") == _files(out)  # every file, media included, byte for byte


def test_export_writes_the_stored_draw_and_refuses_a_stale_one(sqlite_url, tmp_path, monkeypatch):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    spec = str(built["spec"])
    drawn = draw_bench(ctx, PROFILE, spec, 0)
    monkeypatch.setattr(bench_module, "draw", lambda *args, **kwargs: pytest.fail("an export must not draw the bench"))
    export(ctx, PROFILE, tmp_path / "release", formats=["jsonl", "bench"], bench_spec=spec)
    rows = [json.loads(line) for line in (tmp_path / "release" / "clips.jsonl").read_text().splitlines()]
    with db.session_factory(sqlite_url)() as session:
        stored = set(session.execute(select(BenchClip.clip_id, BenchClip.subbench, BenchClip.stratum)).all())
    assert len(stored) == 8 and {(r["clip_id"], r["bench_subbenchmark"], r["bench_stratum"]) for r in rows if r["split"] == "bench"} == stored
    report = json.loads((tmp_path / "release" / "bench" / "report.json").read_text())
    assert report == {k: v for k, v in drawn.items() if k not in ("run_id", "bench_id", "profile", "profile_hash")}

    (tmp_path / "category.csv").write_text(f"clip_id,category\n{built['clips']['P9-0']},lecture\n")
    import_labels(ctx, tmp_path / "category.csv")  # any label of a candidate changes what a draw would see
    stale = rf"drawn before the decisions, labels or speakers of its clips changed: run `talkvid bench draw --profile talkvid-code --spec {re.escape(spec)} --seed 0` again"
    with pytest.raises(TalkvidError, match=stale):
        export(ctx, PROFILE, tmp_path / "release", formats=["jsonl", "bench"], bench_spec=spec)


def _source_of(catalog, video_name: str) -> Path:
    with db.session_factory(catalog.url)() as session:
        return Path(session.get(Video, catalog.videos[video_name]).storage_path)


def test_export_goes_on_when_source_media_is_missing(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)  # clips whose videos have no media at all
    result = draw_and_export(ctx, tmp_path / "out", built["spec"], formats=["talkvid-json", "clips"])
    assert result["counts"]["train"] == 0 and result["counts"]["media_failed"] == 5
    assert json.loads((tmp_path / "out" / "talkvid.json").read_text()) == []
    assert {e["reason"] for e in result["errors"]} == {"source media missing: the video has no storage path"}
    with db.session_factory(sqlite_url)() as session:
        assert session.get(Run, result["run_id"]).status == "partial"


def test_export_cli_and_clear_errors(talkvid_env, tmp_path):
    runner, url, ctx = cli_catalog(talkvid_env)
    with pytest.raises(TalkvidError, match="no decisions for profile talkvid-paper"):
        export(ctx, "talkvid-paper", tmp_path / "none", formats=["jsonl"])
    built = build_people_catalog(ctx, tmp_path)
    with pytest.raises(ConfigError, match="format bench needs a bench spec"):
        export(make_context(url, talkvid_env, bench_spec=None), PROFILE, tmp_path / "none", formats=["bench"])
    with pytest.raises(ConfigError, match="unknown export format"):
        export(ctx, PROFILE, tmp_path / "none", formats=["mp3"])
    spec = str(built["spec"])
    with pytest.raises(TalkvidError) as no_draw:  # an export only writes: the bench must have been drawn
        export(ctx, PROFILE, tmp_path / "none", formats=["jsonl"], bench_spec=spec, seed=2)
    assert re.fullmatch(
        rf"no bench draw of spec small \(content hash \w+\) with seed 2 for profile talkvid-code \(content hash \w+\): "
        rf"run `talkvid bench draw --profile talkvid-code --spec {re.escape(spec)} --seed 2` first",
        str(no_draw.value),
    )
    with db.session_factory(url)() as session:
        assert not (tmp_path / "none").exists() and not session.scalar(select(Run.id).where(Run.stage == "export"))  # before any work
    drawn = runner.invoke(cli, ["bench", "draw", "--spec", spec, "--seed", "2", "--json"])
    assert drawn.exit_code == 0, drawn.output
    args = ["export", "--profile", PROFILE, "--out", str(tmp_path / "cli"), "--format", "talkvid-json", "--format", "jsonl",
            "--bench-spec", spec, "--seed", "2"]  # fmt: skip
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert Path(result["paths"]["talkvid_json"]).exists() and Path(result["paths"]["card"]).exists() and Path(result["paths"]["manifest"]).exists()
    assert not (tmp_path / "cli" / "clips.parquet").exists() and result["name"] == f"talkvid-code-{load_profile(PROFILE).content_hash[:8]}-small-seed2"
    narrower = runner.invoke(cli, args[:5] + args[7:])  # the same directory, talkvid.json no longer asked for
    assert narrower.exit_code == 0 and not (tmp_path / "cli" / "talkvid.json").exists() and (tmp_path / "cli" / "clips.jsonl").exists()
    assert runner.invoke(cli, ["export", "--out", str(tmp_path / "x"), "--format", "mp3"]).exit_code == 2


def test_talkvid_fields_hold_the_dover_and_cotracker_scores_the_catalog_stored(sqlite_url, tmp_path, pyfeat_media):
    """With DOVER's and CoTracker3's test models scoring real clips, TalkVid's fields equal the stored released-code
    metrics, the provenance names them, and a strict export is TalkVid's shape only."""
    from factories import add_clip, add_run, add_source, add_video
    from sqlalchemy import select as sql_select

    from talkvid_ops.catalog.models import Score
    from talkvid_ops.config import PipelineConfig, Settings
    from talkvid_ops.context import Context
    from talkvid_ops.curate.decide import decide
    from talkvid_ops.score import stage as score_stage
    from tests.media.random_models import write_random_cotracker, write_random_dover

    models = tmp_path / "models"
    write_random_dover(models / "dover" / "onnx_dover.onnx")
    write_random_cotracker(models)
    pipeline = PipelineConfig.model_validate(
        {"score": {"scorers": ["quality", "motion"], "quality_backend": "dover", "motion_backend": "cotracker3", "model_dir": str(models)},
         "curate": {"bench_spec": None}}
    )  # fmt: skip
    ctx = Context(Settings(data_dir=tmp_path, database_url=sqlite_url, pipeline=pipeline))
    with ctx.sessions() as session:
        run_id, source_id = add_run(session, "segment"), add_source(session)
        video_id = add_video(session, source_id, "face", storage_path=str(pyfeat_media["single_face.mp4"]))
        clips = [add_clip(session, video_id, run_id, first, end, 30.0) for first, end in ((0, 40), (30, 72))]
        session.commit()
    assert score_stage.score(ctx)["clips"] == 2
    profile = tmp_path / "models-only.yaml"
    profile.write_text(
        "name: models-only\ncriteria:\n"
        "  quality: {rules: [{backend: dover, metric: dover_released, min: -1000}]}\n"
        "  motion: {rules: [{backend: cotracker3, metric: motion_visibility_code, min: 0}]}\n"
    )
    decide(ctx, str(profile))
    export(ctx, str(profile), tmp_path / "release", formats=["talkvid-json", "jsonl"])
    records = json.loads((tmp_path / "release" / "talkvid.json").read_text())
    with ctx.sessions() as session:
        stored = {(s.clip_id, s.backend, s.metric): s.value for s in session.scalars(sql_select(Score))}
    assert sorted(r["id"] for r in records) == sorted(clips)
    for r in records:
        assert r["dover_scores"] == stored[(r["id"], "dover", "dover_released")] and r["dover_scores"] is not None
        assert r["cotracker_ratio"] == stored[(r["id"], "cotracker3", "motion_visibility_code")] and r["cotracker_ratio"] is not None
        provenance = r["talkvid_provenance"]
        assert (provenance["dover_scores"]["backend"], provenance["dover_scores"]["metric"]) == ("dover", "dover_released")
        assert (provenance["cotracker_ratio"]["backend"], provenance["cotracker_ratio"]["metric"]) == ("cotracker3", "motion_visibility_code")
        assert provenance["criteria"]["quality"] == {"backend": "dover", "metric": "dover_released", "min": -1000.0, "max": None, "value": r["dover_scores"]}
        assert r["head_detail"] == {"scores": dict.fromkeys(HEAD_SCORES), "passed": None}  # no head scorer ran
    ctx.config.export = ctx.config.export.model_copy(update={"strict": True})
    export(ctx, str(profile), tmp_path / "strict", formats=["talkvid-json"])
    strict = json.loads((tmp_path / "strict" / "talkvid.json").read_text())
    assert strict == _talkvid_shape(records) and all(list(r)[-1] == "head_detail" for r in strict)
