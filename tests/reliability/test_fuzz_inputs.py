"""Hostile input files: a file that is not an annotation file is refused whole, naming the file and its
missing/unknown columns and echoing none of its content; and fuzzing (hypothesis) of subtitle cue text, profile
YAML files and label import files (CSV, JSON, JSONL): never a traceback, every rejection names the item."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Label, Run
from talkvid_ops.curate.labels.annotations import import_labels
from talkvid_ops.curate.profiles import load_profile, shipped_profiles
from talkvid_ops.errors import ConfigError, TalkvidError
from talkvid_ops.segment.speech import parse_cues, subtitle_speech
from tests.factories import add_clip, add_run, add_source, add_video
from tests.release_catalog import make_context

CANARY = "CANARY-7f3a9d"
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def one_clip(sqlite_url) -> str:
    with db.session_factory(sqlite_url)() as session:
        video = add_video(session, add_source(session), "talk", storage_path="/nowhere/talk.mp4")
        clip_id = add_clip(session, video, add_run(session, "segment"), 0, 150, 25.0)
        session.commit()
    return clip_id


def _stored_text(url: str) -> str:
    """Everything the catalog holds about import runs and labels, as text."""
    with db.session_factory(url)() as session:
        runs = session.scalars(select(Run).where(Run.stage == "labels")).all()
        labels = session.scalars(select(Label)).all()
        return json.dumps([[r.params, r.errors, r.counts] for r in runs] + [[lb.name, lb.value, lb.origin] for lb in labels], default=str)


@pytest.mark.parametrize(
    ("name", "content", "named"),
    [
        ("tool.csv", f'import os\nprint("{CANARY}")\nSECRET = "{CANARY}"\n', ["no subject column", "no label column"]),
        ("prices.csv", f"product,price,sku\nwidget,{CANARY},1\ngadget,2,{CANARY}\n", ["unknown column(s) price, product, sku", "no subject column"]),
        ("orders.jsonl", json.dumps({"order": CANARY, "total": 3}) + "\n", ["unknown column(s) order, total", "no subject column"]),
    ],
)
def test_a_file_that_is_not_annotations_is_refused_naming_its_columns_not_its_content(sqlite_url, one_clip, tmp_path, name, content, named):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TalkvidError) as refused:
        import_labels(make_context(sqlite_url, tmp_path), path)
    message = str(refused.value)
    assert message.startswith(f"{path}: not an annotation file: ") and all(part in message for part in named), message
    assert CANARY not in message and CANARY not in _stored_text(sqlite_url)


# --- fuzzing ---------------------------------------------------------------------------------------------------

_cue_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
_stamp = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 999)).map(lambda t: "{:02d}:{:02d}:{:02d}.{:03d}".format(*t))


@FUZZ
@given(texts=st.lists(_cue_text, min_size=1, max_size=4), stamps=st.lists(_stamp, min_size=2, max_size=8), srt=st.booleans(), noise=_cue_text)
def test_subtitle_cue_text_never_breaks_the_parser(tmp_path, texts, stamps, srt, noise):
    blocks = []
    for index, text in enumerate(texts):
        start, end = stamps[index % len(stamps)], stamps[(index + 1) % len(stamps)]
        timing = f"{start} --> {end}".replace(".", "," if srt else ".")
        blocks.append(f"{index + 1}\n{timing}\n{text}" if srt else f"{timing}\n{text}")
    document = ("" if srt else "WEBVTT\n\n") + "\n\n".join(blocks) + f"\n\n{noise}\n"
    path = tmp_path / f"{uuid.uuid4().hex}.{'srt' if srt else 'vtt'}"
    path.write_text(document, encoding="utf-8")
    cues = parse_cues(document)
    assert len(cues) >= len(texts)  # every timing line is a cue, whatever text follows it
    assert all(isinstance(c.start, float) and isinstance(c.end, float) for c in cues)
    for start, end in subtitle_speech(path):
        assert 0 <= start < end


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=20))
_yaml_values = st.recursive(
    _scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12
)


def _mutated_profile(draw_path: list, value) -> dict:
    body = yaml.safe_load(shipped_profiles()["talkvid-code"].read_text())
    node = body
    for key in draw_path[:-1]:
        node = node[key] if isinstance(node, dict) and key in node else node
    if isinstance(node, dict):
        node[draw_path[-1] if draw_path[-1] in node or not node else next(iter(node))] = value
    return body


@FUZZ
@given(
    raw=st.one_of(st.text(max_size=200), st.binary(max_size=200)),
    mutation=st.tuples(
        st.lists(st.sampled_from(["name", "criteria", "quality", "rules", "min", "max", "backend", "description"]), min_size=1, max_size=4), _yaml_values
    ),
)
def test_profile_files_load_or_are_refused_naming_the_file(tmp_path, raw, mutation):
    for index, content in enumerate([raw, yaml.safe_dump(_mutated_profile(*mutation), allow_unicode=True)]):
        path = tmp_path / f"profile-{uuid.uuid4().hex}-{index}.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        try:
            profile = load_profile(path)
        except ConfigError as exc:
            assert str(exc).startswith(f"{path}: ") or str(exc).startswith(f"profile {str(path)!r}"), str(exc)
        else:
            assert profile.name and profile.criteria


_columns = st.sampled_from(["clip_id", "video_id", "url", "gender", "age", "Age Group", "language", "person", "ethnicity", "category",
                            "confidence", "note", "name", "value", "price", "x y", "", "Person ID"])  # fmt: skip
_cell = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), st.sampled_from(["male", "female", "en", "60+", "31", "0.5"]))


@FUZZ
@given(kind=st.sampled_from(["csv", "json", "jsonl"]), header=st.lists(_columns, min_size=1, max_size=5, unique=True),
       rows=st.lists(st.lists(_cell, min_size=5, max_size=5), max_size=4), garbage=st.one_of(st.none(), st.binary(max_size=60)),
       use_clip=st.booleans())  # fmt: skip
def test_label_import_files_import_or_are_refused_naming_the_file_or_row(sqlite_url, one_clip, tmp_path, kind, header, rows, garbage, use_clip):
    records = [{column: (one_clip if column == "clip_id" and use_clip else cells[i]) for i, column in enumerate(header)} for cells in rows]
    path = tmp_path / f"labels-{uuid.uuid4().hex}.{kind}"
    if garbage is not None:
        path.write_bytes(garbage)
    elif kind == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header)
        writer.writeheader()
        writer.writerows(records)
        path.write_text(buffer.getvalue(), encoding="utf-8", errors="surrogatepass")
    elif kind == "json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    try:
        result = import_labels(make_context(sqlite_url, tmp_path), path)
    except TalkvidError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
    else:
        assert all(e["item"].startswith(f"{path.name}:") for e in result["errors"]), result["errors"]
        if garbage is None:  # every row of a readable file is imported or skipped with its reason
            assert result.get("rows_imported", 0) + result.get("rows_skipped", 0) == len(records)
