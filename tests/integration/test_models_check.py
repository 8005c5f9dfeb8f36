"""`talkvid models check` on a catalog with one real face clip: every production backend is listed with the files it
looks for; a configured one whose files are missing is reported missing with the path and fails the command, a
configured one that is present (buffalo_l models the test builds) loads and runs on the clip with its times."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from factories import add_clip, add_run, add_source, add_video
from insightface_models import write_buffalo_l

from talkvid_ops.catalog import db
from talkvid_ops.models_check import models


def invoke(tmp_path, monkeypatch, config: dict, *args: str):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    config_file = tmp_path / "talkvid.yaml"
    config_file.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("TALKVID_DATA_DIR", str(data))
    monkeypatch.setenv("TALKVID_DATABASE_URL", f"sqlite:///{data / 'catalog.sqlite'}")
    monkeypatch.setenv("TALKVID_CONFIG", str(config_file))
    return CliRunner().invoke(models, ["check", *args])


def add_face_clip(tmp_path, video) -> str:
    url = f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite'}"
    (tmp_path / "data").mkdir(exist_ok=True)
    db.upgrade(url)
    from talkvid_ops.catalog.db import session_factory

    with session_factory(url)() as session:
        run_id = add_run(session, "segment")
        clip_id = add_clip(session, add_video(session, add_source(session), "face", storage_path=str(video)), run_id, 0, 72, 30)
        session.commit()
    return clip_id


def test_models_check_reports_each_backend_with_its_paths(tmp_path, monkeypatch, pyfeat_media):
    clip_id = add_face_clip(tmp_path, pyfeat_media["single_face.mp4"])
    models_dir = tmp_path / "models"
    write_buffalo_l(models_dir)
    config = {
        "score": {"model_dir": str(models_dir), "quality_backend": "dover", "head_backend": "insightface"},
        "caption": {"model_dir": str(models_dir / "qwen2.5-vl")},
        "segment": {"asr": {"model_dir": str(models_dir / "whisper" / "large-v3")}},
    }
    result = invoke(tmp_path, monkeypatch, config)
    assert result.exit_code == 1, result.output  # configured backends are missing
    assert f"clip: {clip_id}" in result.output
    lines = {tuple(line.split()[:2]): line for line in result.output.splitlines()[2:]}
    assert " missing " in lines[("quality", "dover")] and str(models_dir / "dover" / "onnx_dover.onnx") in lines[("quality", "dover")]
    assert " ok " in lines[("head", "insightface")] and str(models_dir / "insightface" / "buffalo_l" / "det_10g.onnx") in lines[("head", "insightface")]
    assert " missing " in lines[("caption", "qwen2.5-vl")] and str(models_dir / "qwen2.5-vl" / "config.json") in lines[("caption", "qwen2.5-vl")]
    assert " missing " in lines[("asr", "faster-whisper")] and str(models_dir / "whisper" / "large-v3" / "model.bin") in lines[("asr", "faster-whisper")]
    # not configured: listed with where they would be looked for
    assert " absent " in lines[("motion", "cotracker3")] and str(models_dir / "cotracker" / "scaled_offline.pth") in lines[("motion", "cotracker3")]
    assert " absent " in lines[("head", "fan")] and "2DFAN4-11f355bf06.pth.tar" in lines[("head", "fan")]

    report = json.loads(invoke(tmp_path, monkeypatch, config, "--json").output)
    checks = {(c["step"], c["backend"]): c for c in report["backends"]}
    assert report["clip"] == clip_id and len(checks) == 6
    insightface = checks[("head", "insightface")]
    assert insightface["configured"] and insightface["status"] == "ok" and insightface["detail"] == "11 metrics"
    assert insightface["load_s"] >= 0 and insightface["run_s"] > 0
    dover = checks[("quality", "dover")]
    assert dover["configured"] and dover["status"] == "missing" and dover["files"] == [str(models_dir / "dover" / "onnx_dover.onnx")]
    assert dover["load_s"] is None and dover["run_s"] is None


def test_models_check_passes_when_the_configured_backends_run(tmp_path, monkeypatch, pyfeat_media):
    add_face_clip(tmp_path, pyfeat_media["single_face.mp4"])
    models_dir = tmp_path / "models"
    write_buffalo_l(models_dir)
    result = invoke(tmp_path, monkeypatch, {"score": {"model_dir": str(models_dir), "head_backend": "insightface"}}, "--json")
    assert result.exit_code == 0, result.output
    statuses = {(c["step"], c["backend"]): (c["configured"], c["status"]) for c in json.loads(result.output)["backends"]}
    assert statuses[("head", "insightface")] == (True, "ok")
    assert statuses[("caption", "qwen2.5-vl")] == (False, "absent")  # no caption.model_dir: skipped, not a failure
    assert statuses[("quality", "dover")] == (False, "absent")
