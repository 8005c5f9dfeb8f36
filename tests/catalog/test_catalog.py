"""The catalog on SQLite and PostgreSQL: migrations, natural-key upserts, integrity, run records."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import ALL_TABLES, Base, Clip, Run, Score, Video
from talkvid_ops.catalog.runs import stage_run
from talkvid_ops.catalog.status import VideoStatus
from talkvid_ops.catalog.upsert import claim, upsert
from talkvid_ops.ids import make_id
from tests.factories import add_clip, add_run, add_source, add_video


def test_upgrade_and_downgrade_from_empty(catalog_url):
    engine = db.get_engine(catalog_url)
    assert set(ALL_TABLES) <= set(inspect(engine).get_table_names())
    assert db.current_revision(catalog_url) == db.head_revision(catalog_url)
    db.downgrade(catalog_url, "base")
    engine.dispose()
    assert not set(ALL_TABLES) & set(inspect(engine).get_table_names())
    assert db.current_revision(catalog_url) is None
    db.upgrade(catalog_url)
    assert set(ALL_TABLES) <= set(inspect(engine).get_table_names())


def test_migrations_match_the_models(catalog_url):
    with db.get_engine(catalog_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_same_rows_twice_is_one_row(catalog_url):
    factory = db.session_factory(catalog_url)
    for title in ("first", "second"):
        with factory() as session:
            run_id = add_run(session)
            source_id = add_source(session)
            video_id = add_video(session, source_id, "abc", title=title)
            clip_id = add_clip(session, video_id, run_id, 10, 200)
            upsert(
                session,
                Score,
                [
                    dict(
                        id=make_id("score", clip_id, "lk", "motion_valid_ratio_paper"),
                        clip_id=clip_id,
                        metric="motion_valid_ratio_paper",
                        value=0.9 if title == "first" else 0.95,
                        scorer="motion",
                        scorer_version="1",
                        backend="lk",
                        run_id=run_id,
                    )
                ],
                ["clip_id", "backend", "metric"],
            )
            session.commit()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Video)) == 1
        assert session.scalar(select(func.count()).select_from(Clip)) == 1
        assert session.scalar(select(func.count()).select_from(Score)) == 1
        assert session.scalar(select(Video.title)) == "second"  # the upsert updated in place
        assert session.scalar(select(Score.value)) == pytest.approx(0.95)


def test_score_needs_its_clip_and_run(catalog_url):
    factory = db.session_factory(catalog_url)
    with factory() as session:
        run_id = add_run(session)
        video_id = add_video(session, add_source(session), "abc")
        clip_id = add_clip(session, video_id, run_id, 0, 150)
        session.commit()
    for clip, run in (("no-such-clip", run_id), (clip_id, "no-such-run"), (clip_id, None)):
        with factory() as session:
            session.add(
                Score(
                    id=make_id("score", clip, run),
                    clip_id=clip,
                    metric="avg_movement",
                    value=1.0,
                    scorer="head",
                    scorer_version="1",
                    backend="dlib",
                    run_id=run,
                )
            )
            with pytest.raises(IntegrityError):
                session.commit()


def test_stage_run_records_counts_errors_and_airflow_ids(catalog_url, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "talkvid_process")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "score")
    monkeypatch.setenv("AIRFLOW_CTX_MAP_INDEX", "3")
    factory = db.session_factory(catalog_url)
    with stage_run(factory, "score", {"batch": "b1"}) as run:
        run.count("clips", 2)
        run.error("clip-x", "decode failed")
    with pytest.raises(RuntimeError), stage_run(factory, "decide") as failing:
        raise RuntimeError("database went away")
    with factory() as session:
        ok = session.get(Run, run.id)
        assert (ok.status, ok.counts, ok.dag_id, ok.task_id, ok.map_index) == ("partial", {"clips": 2, "errors": 1}, "talkvid_process", "score", 3)
        assert ok.errors[0]["reason"] == "decode failed" and ok.finished_at is not None
        bad = session.get(Run, failing.id)
        assert bad.status == "failed" and "database went away" in bad.errors[0]["reason"]


def test_claim_skips_rows_locked_by_another_worker(postgres_url):
    factory = db.session_factory(postgres_url)
    with factory() as session:
        source_id = add_source(session)
        for i in range(4):
            add_video(session, source_id, f"v{i}", status=VideoStatus.DISCOVERED)
        session.commit()
    query = select(Video).where(Video.status == VideoStatus.DISCOVERED).order_by(Video.platform_id)
    with factory() as first, factory() as second:
        taken_first = {v.id for v in claim(first, query, limit=2)}
        taken_second = {v.id for v in claim(second, query, limit=4)}
        assert len(taken_first) == 2 and len(taken_second) == 2
        assert not taken_first & taken_second


def test_batches_are_deterministic_and_typed_by_stage(sqlite_url):
    from talkvid_ops.catalog.batches import batch_items, make_batches, mark_batch_done, pending_batches
    from talkvid_ops.errors import TalkvidError

    factory = db.session_factory(sqlite_url)
    with factory() as session:
        items = [f"clip{i:03d}" for i in range(25)]
        first = make_batches(session, "score", items, size=10)
        again = make_batches(session, "score", items, size=10)
        assert first == again and len(first) == 3
        assert batch_items(session, first[2], "score") == items[20:]
        with pytest.raises(TalkvidError, match="belongs to stage 'score'"):
            batch_items(session, first[0], "segment")
        bounded = make_batches(session, "bounded", items, size=10, max_batches=2)
        assert len(bounded) == 3 and set(pending_batches(session, "bounded")) == set(bounded[:2])  # the third is not stored
        mark_batch_done(session, first[0], add_run(session))
        session.commit()
        assert set(pending_batches(session, "score")) == set(first[1:])


def test_a_stage_works_on_its_batch_else_the_ids_given_else_the_pending_ones(sqlite_url):
    from talkvid_ops.catalog.batches import chosen_items, make_batches

    factory = db.session_factory(sqlite_url)
    with factory() as session:
        batch = make_batches(session, "score", ["c3", "c1", "c2"], size=10)[0]
        pending = ["p1", "p2", "p3"]
        assert chosen_items(session, "score", batch, None, lambda: pending, None) == ["c1", "c2", "c3"]
        assert chosen_items(session, "score", None, ["c2", "c1", "c2"], lambda: pending, None) == ["c2", "c1"]  # each once
        assert chosen_items(session, "score", None, [], lambda: pending, None) == []  # none given is none, not all pending
        assert chosen_items(session, "score", None, None, lambda: pending, 2) == ["p1", "p2"]
        assert chosen_items(session, "score", batch, None, lambda: pending, 1) == ["c1"]
