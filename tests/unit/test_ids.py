"""Deterministic ids from natural keys."""

from __future__ import annotations

import os

from talkvid_ops.ids import make_id


def test_ids_are_deterministic_and_separate_kinds_and_parts():
    assert make_id("clip", "v1", 1.0, 2.5) == make_id("clip", "v1", 1.0000001, 2.5)  # floats rounded to 6 places
    assert make_id("clip", "v1", 1.0, 2.5) != make_id("score", "v1", 1.0, 2.5)
    assert make_id("x", "ab", "c") != make_id("x", "a", "bc")


def test_a_file_name_that_is_not_utf8_gets_an_id_of_its_own():
    # os.fsdecode keeps undecodable bytes as lone surrogates: such a name must not break id building
    bad = os.fsdecode(b"/media/bad\xff.mp4")
    other = os.fsdecode(b"/media/bad\xfe.mp4")
    assert make_id("video", "local", bad) == make_id("video", "local", bad)
    assert make_id("video", "local", bad) != make_id("video", "local", other)
    assert make_id("video", "local", bad) != make_id("video", "local", "/media/bad.mp4")
