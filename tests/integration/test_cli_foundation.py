"""`talkvid init`, `status` and `profiles` through the installed console script, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.curate.profiles import load_profile
from talkvid_ops.errors import ConfigError

TALKVID = shutil.which("talkvid", path=str(Path(sys.executable).parent)) or "talkvid"


def talkvid(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([TALKVID, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"talkvid {' '.join(args)} failed: {proc.stderr}")
    return proc


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_init_twice_then_status(backend, tmp_path, request):
    env = {"TALKVID_DATA_DIR": str(tmp_path / "data")}
    if backend == "postgres":
        env["TALKVID_DATABASE_URL"] = request.getfixturevalue("pg_server").create_database()
    first = talkvid("init", env=env)
    assert "migrated from empty to" in first.stdout
    second = talkvid("init", env=env)
    assert "is up to date" in second.stdout
    report = json.loads(talkvid("status", "--json", env=env).stdout)
    assert report["clips"] == 0 and report["videos"] == {} and report["runs"] == []
    human = talkvid("status", env=env).stdout
    assert "clips: 0" in human
    if backend == "sqlite":
        assert (tmp_path / "data" / "catalog.sqlite").exists()


def test_status_loads_no_stage_module_or_model_library(tmp_path):
    """`talkvid status` answers quickly on any machine: the stage commands come from the registry, imported only
    when invoked, so neither OpenCV nor yt-dlp nor any stage module is loaded (only the stages' config models)."""
    env = {**os.environ, "TALKVID_DATA_DIR": str(tmp_path / "data")}
    talkvid("init", env=env)
    script = (
        "import sys\n"
        "sys.argv = ['talkvid', 'status']\n"
        "from talkvid_ops.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = ['cv2', 'yt_dlp', 'av', 'torch', 'dlib', 'scenedetect', 'onnxruntime']\n"
        "stages = ('crawl', 'segment', 'score', 'curate', 'export', 'media')\n"
        "parts = [m.split('.') for m in sys.modules if m.startswith('talkvid_ops.')]\n"
        "print('loaded:', sorted(m for m in heavy if m in sys.modules), sorted('.'.join(p) for p in parts if p[1] in stages and len(p) > 2 and p[-1] != 'config'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "clips: 0" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "loaded: [] []"


def test_status_before_init_says_what_to_do(tmp_path):
    proc = talkvid("status", env={"TALKVID_DATA_DIR": str(tmp_path / "empty")}, check=False)
    assert proc.returncode == 1 and "talkvid init" in proc.stderr


def test_every_command_has_help():
    for args in (["--help"], ["init", "--help"], ["status", "--help"], ["profiles", "--help"], ["profiles", "validate", "--help"]):
        proc = talkvid(*args)
        assert "Usage:" in proc.stdout


def test_shipped_profiles_carry_the_reference_thresholds():
    paper, code = load_profile("talkvid-paper"), load_profile("talkvid-code")
    assert paper.criteria["quality"].rules[0].model_dump(include={"backend", "metric", "min"}) == {"backend": "dover", "metric": "dover_released", "min": 7.0}
    assert code.criteria["quality"].rules[0].min == 5.0 and code.criteria["quality"].rules[0].metric == "dover_released"
    motion = paper.criteria["motion"].rules[0]
    assert (motion.backend, motion.min, motion.max) == ("cotracker3", 0.85, 0.999)
    assert "motion" not in code.criteria  # the released code applies no motion threshold
    expected = {
        "avg_movement": 80,
        "min_movement": 60,
        "avg_rotation": 70,
        "min_rotation": 60,
        "avg_orientation": 70,
        "min_orientation": 30,
        "avg_resolution": 50,
        "min_resolution": 40,
        "avg_completeness": 100,
        "min_completeness": 100,
    }
    for profile in (paper, code):
        assert {k: profile.criteria[k].rules[0].min for k in expected} == expected
    assert code.criteria["face_consistency"].rules[0].min == 80 and "face_consistency" not in paper.criteria
    assert paper.content_hash != code.content_hash


def _write_profile(tmp_path, mutate) -> Path:
    body = load_profile("talkvid-code").body()
    mutate(body)
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize(
    "mutate, field, message",
    [
        (
            lambda b: b["criteria"]["avg_movement"]["rules"][0].update(metric="avg_wobble"),
            "criteria.avg_movement.rules.0.metric",
            "unknown metric 'avg_wobble'",
        ),
        (lambda b: b["criteria"]["min_rotation"]["rules"][0].update(min="sixty"), "criteria.min_rotation.rules.0.min", "valid number"),
        (lambda b: b["criteria"]["quality"]["rules"][1].update(min=80, max=20), "criteria.quality.rules.1", "min (80.0) is above max (20.0)"),
        (lambda b: b.update(thresholds={}), "thresholds", "Extra inputs are not permitted"),
    ],
)
def test_validate_rejects_bad_profiles_naming_the_field(tmp_path, mutate, field, message):
    path = _write_profile(tmp_path, mutate)
    proc = talkvid("profiles", "validate", str(path), check=False)
    assert proc.returncode == 1
    assert field in proc.stderr and message in proc.stderr, proc.stderr


def test_validate_and_show_accept_names_and_paths(tmp_path):
    assert "talkvid-paper: valid" in talkvid("profiles", "validate", "talkvid-paper").stdout
    path = _write_profile(tmp_path, lambda b: b.update(name="mine"))
    assert "mine: valid" in talkvid("profiles", "validate", str(path)).stdout
    shown = talkvid("profiles", "show", "talkvid-code").stdout
    assert yaml.safe_load(shown)["criteria"]["avg_resolution"]["rules"][0]["min"] == 50
    assert "talkvid-code" in talkvid("profiles", "list").stdout
    missing = talkvid("profiles", "show", "no-such-profile", check=False)
    assert missing.returncode == 1 and "neither a shipped profile" in missing.stderr


def test_threshold_overrides_make_a_new_profile_version():
    code = load_profile("talkvid-code")
    stricter = code.with_thresholds({"avg_movement": {"min": 90}})
    assert stricter.criteria["avg_movement"].rules[0].min == 90
    assert stricter.content_hash != code.content_hash
    with pytest.raises(ConfigError, match="thresholds.avg_wobble"):
        code.with_thresholds({"avg_wobble": {"min": 1}})
    with pytest.raises(ConfigError, match="min .* is above max"):
        code.with_thresholds({"avg_movement": {"min": 9, "max": 1}})
    # quality is measured on two scales (DOVER 0-10, classical 0-100): a bare bound would be wrong for one of them
    with pytest.raises(
        ConfigError, match=r"thresholds\.quality: its rules measure on different scales \(dover: dover_released, classical: quality_technical\)"
    ):
        code.with_thresholds({"quality": {"min": 7}})
    dover_only = code.with_thresholds({"quality": {"backend": "dover", "min": 7}})
    assert [(r.backend, r.min) for r in dover_only.criteria["quality"].rules] == [("dover", 7), ("classical", code.criteria["quality"].rules[1].min)]
    with pytest.raises(ConfigError, match=r"thresholds\.quality\.backend: 'cotracker3' has no rule"):
        code.with_thresholds({"quality": {"backend": "cotracker3", "min": 7}})
    with pytest.raises(ConfigError, match=r"thresholds\.avg_movement\.mean: only min, max and backend"):
        code.with_thresholds({"avg_movement": {"mean": 7}})


def test_config_file_errors_name_the_field(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("segment:\n  threshold: 0.1\n")
    assert PipelineConfig.from_yaml(good).segment.threshold == 0.1
    bad = tmp_path / "bad.yaml"
    bad.write_text("segment:\n  threshold: high\n")
    with pytest.raises(ConfigError, match=r"segment\.threshold"):
        PipelineConfig.from_yaml(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("segmnet: {}\n")
    with pytest.raises(ConfigError, match="segmnet"):
        PipelineConfig.from_yaml(typo)
    settings = Settings.from_env({"TALKVID_DATA_DIR": str(tmp_path), "TALKVID_CONFIG": str(good)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    assert settings.pipeline.segment.threshold == 0.1
    pg = Settings.from_env({"TALKVID_DATA_DIR": str(tmp_path), "TALKVID_DATABASE_URL": "postgresql://u:secret@h/db"})
    assert pg.database_url.startswith("postgresql+psycopg2://") and "secret" not in pg.redacted_database_url()


def test_stage_commands_on_a_missing_or_unreachable_catalog_say_so(tmp_path):
    fresh = {"TALKVID_DATA_DIR": str(tmp_path / "fresh")}
    for args in (["source", "list"], ["segment"], ["decide", "--profile", "talkvid-code"], ["status"]):
        proc = talkvid(*args, env=fresh, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "no catalog file at" in proc.stderr and "run `talkvid init`" in proc.stderr
    assert not (tmp_path / "fresh" / "catalog.sqlite").exists()  # asking never creates a catalog
    dead = {**fresh, "TALKVID_DATABASE_URL": "postgresql+psycopg2://u:s3cret@127.0.0.1:1/x"}
    for args in (["status"], ["ingest", str(tmp_path)], ["init"]):
        proc = talkvid(*args, env=dead, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "127.0.0.1" in proc.stderr and "s3cret" not in proc.stderr
    assert "cannot reach the catalog" in talkvid("status", env=dead, check=False).stderr
    bad_driver = talkvid("status", env={**fresh, "TALKVID_DATABASE_URL": "mysql://u@h/x"}, check=False)
    assert bad_driver.returncode == 1 and "Traceback" not in bad_driver.stderr and "cannot reach the catalog" in bad_driver.stderr


def test_unreadable_config_and_profile_files_are_one_clear_error(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    for env, args, message in (
        ({"TALKVID_CONFIG": str(tmp_path)}, ["status"], "is a folder, not a config file"),
        ({"TALKVID_CONFIG": str(binary)}, ["status"], "not a text file"),
        ({}, ["profiles", "validate", str(tmp_path)], "is a folder, not a profile"),
        ({"TALKVID_DATA_DIR": "/proc/talkvid-cannot-be-here"}, ["init"], "cannot create the data dir"),
    ):
        proc = talkvid(*args, env={"TALKVID_DATA_DIR": str(tmp_path / "d"), **env}, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_failed_items_are_reported_with_their_reasons(tmp_path):
    env = {"TALKVID_DATA_DIR": str(tmp_path / "data")}
    talkvid("init", env=env)
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "empty.mp4").write_bytes(b"")
    proc = talkvid("ingest", str(tmp_path / "media"), env=env, check=False)
    assert proc.returncode == 0  # a partial run: the rest of the batch went on
    assert "ingest: 1 item(s) failed" in proc.stderr and "empty.mp4" in proc.stderr
    assert json.loads(proc.stdout)["errors"] == 1
