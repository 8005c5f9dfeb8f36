"""Progress of long loops: log lines where nobody watches a terminal (Airflow logs), a bar where somebody does."""

from __future__ import annotations

import io
import logging

from talkvid_ops.catalog import db
from talkvid_ops.catalog.runs import stage_run
from talkvid_ops.progress import describe, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_count_items_and_estimate_the_rest(caplog):
    caplog.set_level(logging.INFO, logger="talkvid.progress")
    assert list(track(range(4), 4, "score clips", stream=io.StringIO(), log_every_s=0)) == [0, 1, 2, 3]
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0] for m in messages] == [f"score clips: {i}/4" for i in range(1, 5)]
    assert "eta" in messages[0] and "eta" not in messages[-1]
    assert describe("x", 5, None, 2.0) == "x: 5/? (2.50/s)"
    assert describe("x", 1, 3, 2.0) == "x: 1/3 (0.50/s, eta 4 s)"


def test_quiet_between_intervals_but_always_reports_the_end(caplog):
    caplog.set_level(logging.INFO, logger="talkvid.progress")
    list(track(range(50), 50, "segment videos", stream=io.StringIO(), log_every_s=3600))
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["segment videos: 50/50"]


def test_terminal_gets_a_bar(caplog):
    terminal = Terminal()
    assert list(track(range(3), 3, "export clips cut", stream=terminal)) == [0, 1, 2]
    assert "export clips cut" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert not caplog.records


def test_run_progress_is_labelled_with_the_stage(sqlite_url, caplog):
    caplog.set_level(logging.INFO, logger="talkvid.progress")
    with stage_run(db.session_factory(sqlite_url), "segment") as run:
        seen = list(run.progress(["a", "b"], 2, "videos"))
    assert seen == ["a", "b"]
    assert caplog.records[-1].getMessage().startswith("segment videos: 2/2")
