"""A release as of a date selects the clips of the videos crawled by then, on SQLite (naive stored times) and
PostgreSQL alike: the bench candidates and the export's records."""

from __future__ import annotations

import datetime as dt

from talkvid_ops.catalog import db
from talkvid_ops.curate.bench import bench_candidates
from talkvid_ops.export.records import load_records
from tests.factories import add_clip, add_run, add_source, add_video
from tests.release_catalog import add_decision, add_profile

EARLY = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def test_clips_of_videos_crawled_after_the_date_are_left_out(catalog_url):
    with db.session_factory(catalog_url)() as session:
        run_id, source_id, profile_id = add_run(session), add_source(session), add_profile(session)
        clips = {}
        for name, crawled in (("early", EARLY), ("late", LATE)):
            video_id = add_video(session, source_id, name, downloaded_at=crawled)
            clips[name] = add_clip(session, video_id, run_id, 0, 150)
            add_decision(session, clips[name], profile_id, run_id, "passed")
        session.commit()

        def released(as_of):
            candidates = {c.clip_id for c in bench_candidates(session, profile_id, as_of=as_of)}
            records = {r.id for r in load_records(session, profile_id, 0.5, as_of=as_of)}
            assert candidates == records
            return candidates

        # an hour after the early crawl, in another zone: the same moment in UTC
        assert released(EARLY.astimezone(dt.timezone(dt.timedelta(hours=-5))) + dt.timedelta(hours=1)) == {clips["early"]}
        assert released(EARLY - dt.timedelta(seconds=1)) == set()
        assert released(LATE) == set(clips.values())  # crawled at the date counts
        assert released(None) == set(clips.values())  # undated: everything
