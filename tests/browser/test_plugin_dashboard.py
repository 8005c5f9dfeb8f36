"""The catalog dashboard (talkvid_ops.dashboard) and its Airflow plugin: the app, without Airflow, serves counts that
match the catalog (SQLite and PostgreSQL) as JSON and as a page that renders in Chromium, and a 503 with the reason
when the catalog cannot be read; the plugin is loaded and mounted by Airflow itself, behind Airflow's login."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import (
    Clip,
    Decision,
    DecisionFailure,
    FaceEmbedding,
    Label,
    Profile,
    Release,
    Score,
    Scoring,
    Segmentation,
    Source,
    Video,
)
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config import Settings
from talkvid_ops.context import Context
from talkvid_ops.crawl.ingest import ingest_paths
from talkvid_ops.dashboard.app import create_app
from talkvid_ops.ids import make_id
from tests.factories import add_clip, add_run, add_source, add_video
from tests.release_catalog import add_decision, add_profile

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
HEAVY = ("torch", "cv2", "av", "yt_dlp", "onnxruntime", "faster_whisper", "scenedetect", "transformers", "dlib")
# what loading the plugin may import of talkvid: the dashboard app, no settings, models or stages
TALKVID_AT_PLUGIN_LOAD = {"talkvid_ops", "talkvid_ops.errors", "talkvid_ops.redact", "talkvid_ops.catalog", "talkvid_ops.catalog.db",
                          "talkvid_ops.catalog.status", "talkvid_ops.dashboard", "talkvid_ops.dashboard.access", "talkvid_ops.dashboard.app",
                          "talkvid_ops.dashboard.page", "talkvid_ops.dashboard.report", "talkvid_ops.dashboard.clips",
                          "talkvid_ops.dashboard.whatif"}  # fmt: skip
AIRFLOW_TASK = {"AIRFLOW_CTX_DAG_ID": "talkvid_crawl", "AIRFLOW_CTX_DAG_RUN_ID": "manual__2026-03-01T00:00:00+00:00",
                "AIRFLOW_CTX_TASK_ID": "ingest", "AIRFLOW_CTX_MAP_INDEX": "2", "AIRFLOW_CTX_TRY_NUMBER": "1"}  # fmt: skip
DECISIONS = ["passed", "passed", "passed", "failed", "undecided"]
GONE_REASON = "Video unavailable: this video has been removed by the uploader"
SCORING_ERROR = "no face found in 12 sampled frames"


def fill_catalog(url: str, root: Path) -> dict:
    """A catalog made by the real ingest stage (as an Airflow task: two unreadable files) plus factory rows for every
    later stage: probed, gone and failed videos, clips, a failed segmentation, scorings, decisions and a release whose
    files exist. Returns what the test needs to find again."""
    drop = root / "drop"
    drop.mkdir(parents=True)
    (drop / "empty.mp4").write_bytes(b"")
    (drop / "notes.mp4").write_text("meeting notes, not a video\n" * 40)
    ctx = Context(Settings(data_dir=root / "data", database_url=url))
    with pytest.MonkeyPatch.context() as env:
        for key, value in AIRFLOW_TASK.items():
            env.setenv(key, value)
        ingest = ingest_paths(ctx, [drop])
    assert ingest["failed"] == 2

    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        source_id = add_source(session, "https://talks.example.invalid/list")
        videos = [add_video(session, source_id, f"talk-{i}", status="probed", availability="available") for i in range(3)]
        add_video(session, source_id, "talk-gone", status="probed", availability="gone", availability_reason=GONE_REASON,
                  title="a removed talk", url="https://talks.example.invalid/talk-gone")  # fmt: skip
        add_video(session, source_id, "talk-private", status="failed", error_class="permanent", error_message="Private video")
        upsert(session, Segmentation, [dict(id=make_id("segmentation", videos[2], "p0"), video_id=videos[2], segmenter="test",
               segmenter_version="1", params_hash="p0", status="failed", error="no audio stream", error_class="no_audio",
               run_id=run_id)], ["video_id", "params_hash"])  # fmt: skip
        profile_id = add_profile(session)
        clips = [add_clip(session, videos[i % 2], run_id, 150 * i, 150 * i + 150) for i in range(len(DECISIONS))]
        for i, (clip_id, status) in enumerate(zip(clips, DECISIONS)):
            add_decision(session, clip_id, profile_id, run_id, status)
            failed = i == len(clips) - 1
            upsert(session, Scoring, [dict(id=make_id("scoring", clip_id, "head", "dlib"), clip_id=clip_id, scorer="head",
                   backend="dlib", scorer_version="1", status="failed" if failed else "ok",
                   error=SCORING_ERROR if failed else None, run_id=run_id)], ["clip_id", "scorer", "backend"])  # fmt: skip
        out_dir = root / "releases" / "talkvid-code-test"
        files = {"README.md": "# card\n", "report.html": "<html><body>report</body></html>", "manifest.json": "{}",
                 f"clips/{clips[0]}.mp4": "not really a video"}  # fmt: skip
        for path, text in files.items():
            (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / path).write_text(text)
        release_id = make_id("release", "talkvid-code-test")
        session.add(Release(id=release_id, name="talkvid-code-test", profile_id=profile_id, formats=["talkvid-json"],
                            out_dir=str(out_dir), files={p: hashlib.sha256(t.encode()).hexdigest() for p, t in files.items()},
                            counts={"candidates": 5, "passed": 3}, code_version="test", run_id=run_id))  # fmt: skip
        session.commit()
    return {"url": url, "data_dir": root / "data", "ingest_run": ingest["run_id"], "release_id": release_id,
            "out_dir": out_dir, "clips": clips}  # fmt: skip


def sqlite_catalog(root: Path) -> dict:
    url = f"sqlite:///{root / 'catalog.sqlite'}"
    db.upgrade(url)
    return fill_catalog(url, root)


def grouped(url: str, column) -> dict[str, int]:
    """Counts straight from the catalog, to compare the dashboard with."""
    with db.session_factory(url)() as session:
        return {str(k): n for k, n in session.execute(select(column, func.count()).group_by(column))}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def filled(request, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp(f"dashboard-{request.param}")
    if request.param == "sqlite":
        catalog = sqlite_catalog(root)
    else:
        url = request.getfixturevalue("pg_server").create_database()
        db.upgrade(url)
        catalog = fill_catalog(url, root)
    yield catalog
    db.get_engine(catalog["url"]).dispose()


@pytest.fixture
def client():
    """The dashboard app as the library makes it: no Airflow, no login."""
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as test_client:
        yield test_client


def use_catalog(monkeypatch, url: str, data_dir: Path | str) -> None:
    monkeypatch.setenv("TALKVID_DATABASE_URL", url)
    monkeypatch.setenv("TALKVID_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TALKVID_CONFIG", raising=False)


def under_page_or_airflow_ui(href: str) -> bool:
    """A relative link that stays under the page's mount point, or goes up one level to the Airflow UI's task pages."""
    return not href.startswith("/") and "://" not in href and (not href.startswith("..") or href.startswith("../dags/"))


class PageParts(HTMLParser):
    """Table rows as cell texts, stat cards as label -> number, and every link and resource reference."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cards: dict[str, str] = {}
        self.hrefs: list[str] = []
        self.resources: list[str] = []  # src= attributes, <link>, <script>
        self.links: dict[str, dict] = {}  # href -> the <a>'s attributes
        self.images: list[str] = []  # src of <img>
        self._cell: list[str] | None = None
        self._card_part: str | None = None
        self._number = ""
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "div" and attrs.get("class") in ("n", "label"):
            self._card_part = attrs["class"]
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
            self.links[attrs["href"]] = attrs
        if tag == "img":
            self.images.append(attrs["src"])
        elif "src" in attrs or tag in ("link", "script", "iframe"):
            self.resources.append(f"{tag} {attrs}")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "div" and self._card_part:
            self._card_part = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._card_part == "n":
            self._number = data
        elif self._card_part == "label":
            self.cards[data] = self._number

    def row(self, first: str) -> list[str]:
        (found,) = [r for r in self.rows if r and r[0] == first]
        return found


def test_json_and_page_show_the_catalog(filled, client, monkeypatch):
    use_catalog(monkeypatch, filled["url"], filled["data_dir"])
    response = client.get("/api/status")
    assert response.status_code == 200, response.text
    report = response.json()
    status = report["status"]
    assert status["videos"] == grouped(filled["url"], Video.status) == {"failed": 3, "probed": 4}
    assert status["sources"] == grouped(filled["url"], Source.status) and sum(status["sources"].values()) == 2
    assert status["scorings"] == grouped(filled["url"], Scoring.status) == {"ok": 4, "failed": 1}
    assert status["clips"] == sum(grouped(filled["url"], Clip.params_hash).values()) == 5
    assert status["videos_gone"] == 1 and status["releases"] == 1
    (profile,) = status["decisions"]
    assert profile.startswith("talkvid-code@") and status["decisions"][profile] == {"passed": 3, "failed": 1, "undecided": 1}
    assert report["catalog"] == {"url": Settings.from_env().redacted_database_url(), "data_dir": str(filled["data_dir"])}

    failures = report["failures"]
    assert failures["videos"]["media"]["count"] == 2
    assert {x["reason"] for x in failures["videos"]["media"]["examples"]} >= {"empty file (0 bytes)"}
    private = make_id("video", "test", "talk-private")
    assert failures["videos"]["permanent"] == {"count": 1, "examples": [{"id": private, "reason": "Private video"}]}
    assert failures["segmentations"]["no_audio"]["examples"][0]["reason"] == "no audio stream"
    assert failures["scorings"]["head"] == {"count": 1, "examples": [{"id": filled["clips"][-1], "reason": SCORING_ERROR}]}
    (gone,) = report["gone"]
    assert (gone["platform_id"], gone["reason"]) == ("talk-gone", GONE_REASON)
    ingest_run = next(r for r in status["runs"] if r["id"] == filled["ingest_run"])
    assert (ingest_run["dag_id"], ingest_run["dag_run_id"], ingest_run["task_id"], ingest_run["map_index"]) == (
        "talkvid_crawl",
        AIRFLOW_TASK["AIRFLOW_CTX_DAG_RUN_ID"],
        "ingest",
        2,
    )
    (release,) = report["releases"]
    top_files = ["README.md", "manifest.json", "report.html"]
    assert (release["name"], release["file_count"], release["top_files"]) == ("talkvid-code-test", 4, top_files)

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parts = PageParts(page.text)
    assert parts.cards["videos"] == "7" and parts.cards["videos failed"] == "3" and parts.cards["clips"] == "5"
    assert parts.cards["videos gone since crawl"] == "1" and parts.cards["scorings"] == "5" and parts.cards["releases"] == "1"
    assert parts.row(profile)[1:5] == ["3", "1", "1", "5"]
    assert parts.row("media")[1] == "2" and "empty file (0 bytes)" in parts.row("media")[2]
    assert parts.row("head")[2] == f"{filled['clips'][-1]} {SCORING_ERROR}"
    assert any(AIRFLOW_TASK["AIRFLOW_CTX_DAG_RUN_ID"] in cell and "[2]" in cell for row in parts.rows for cell in row)
    # the Airflow 3 UI's route of a mapped task instance, relative to the UI's base, opened in the top window
    task_link = "../dags/talkvid_crawl/runs/manual__2026-03-01T00%3A00%3A00%2B00%3A00/tasks/ingest/mapped/2"
    assert parts.links[task_link]["target"] == "_top"
    assert parts.row("talkvid-code-test")[4] == "README.md manifest.json report.html"
    assert any(GONE_REASON in cell for cell in parts.row("test:talk-gone"))
    # self-contained and relative: nothing loaded from anywhere, every link stays under the mount point
    assert parts.resources == []
    assert parts.hrefs and all(under_page_or_airflow_ui(h) for h in parts.hrefs)
    assert "api/status" in parts.hrefs

    # the release links serve the files of the manifest, and nothing else
    report_link = next(h for h in parts.hrefs if h.endswith("/report.html"))
    assert report_link == f"releases/{filled['release_id']}/files/report.html"
    assert client.get(report_link).text == (filled["out_dir"] / "report.html").read_text()
    assert client.get(f"releases/{filled['release_id']}/files/clips/{filled['clips'][0]}.mp4").status_code == 200
    assert client.get(f"releases/{filled['release_id']}/files/../catalog.sqlite").status_code == 404
    unlisted = client.get(f"releases/{filled['release_id']}/files/notes.txt")
    assert unlisted.json()["detail"] == "release talkvid-code-test has no file notes.txt"
    assert client.get("releases/nope/files/report.html").status_code == 404


THROTTLED = "throttled: HTTP Error 429 from https://bob:hunter22@proxy.example.invalid/list " + "retry later " * 40
PAUSED_UNTIL = dt.datetime(2031, 5, 4, 3, 2, 1, tzinfo=dt.UTC)
THUMBNAIL_COLOR = (40, 90, 200)  # unlike any colour of the page itself


def curated_catalog(url: str, root: Path) -> dict:
    """Three sources (active, paused after throttling, disabled), videos in every state the segment stage tells
    apart, clips scored in part, decided by the real `decide` under both shipped profiles (quality, motion and
    movement failures), a clip scored after that, labels and a speaker for one passed clip, thumbnails for half the
    rejected clips, and runs of mapped and unmapped Airflow tasks."""
    from talkvid_ops.catalog.labels import label_row, write_labels
    from talkvid_ops.catalog.models import FaceEmbedding, Run, Score
    from talkvid_ops.curate.decide import decide
    from talkvid_ops.curate.face_models import FaceDescriptor
    from talkvid_ops.media.thumbnails import thumbnail_path
    from tests.release_catalog import add_scores

    ctx = Context(Settings(data_dir=root / "data", database_url=url))
    params_hash = ctx.config.segment.params_hash
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        active = add_source(session, "https://talks.example.invalid/list")
        throttled = add_source(session, "https://busy.example.invalid/channel", kind="channel")
        disabled = add_source(session, "/srv/drop", kind="folder")
        session.execute(update(Source).where(Source.id == active).values(last_crawled_at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)))
        session.execute(update(Source).where(Source.id == throttled).values(status="paused", paused_until=PAUSED_UNTIL, backoff_level=3, last_error=THROTTLED))
        session.execute(update(Source).where(Source.id == disabled).values(enabled=False))
        stored = {"status": "probed", "storage_path": "/media/x.mp4"}
        videos = [add_video(session, active, f"talk-{i}", **stored) for i in range(2)]
        unsegmented = add_video(session, active, "talk-new", **stored)
        retried = add_video(session, throttled, "talk-retry", **stored)  # failed for a fault of ours: retried
        silent = add_video(session, throttled, "talk-silent", **stored)  # failed for a fault of the media: settled
        add_video(session, throttled, "talk-listed", status="discovered")
        for video_id, status, error_class in [(videos[0], "done", None), (videos[1], "done", None), (retried, "failed", "internal"),
                                              (silent, "failed", "no_audio"), (unsegmented, "done", None)]:  # fmt: skip
            hash_ = "older" if video_id == unsegmented else params_hash  # segmented, but with other parameters
            upsert(session, Segmentation, [dict(id=make_id("segmentation", video_id, hash_), video_id=video_id, segmenter="test",
                   segmenter_version="1", params_hash=hash_, status=status, error_class=error_class, run_id=run_id)],
                   ["video_id", "params_hash"])  # fmt: skip
        clips = [add_clip(session, videos[i % 2], run_id, 150 * i, 150 * i + 150) for i in range(13)]
        scorers = [("quality", "classical"), ("motion", "lk"), ("head", "dlib")]
        for i, clip_id in enumerate(clips):
            done = scorers if i < 10 or i == 12 else scorers[:1] if i == 10 else []
            upsert(session, Scoring, [dict(id=make_id("scoring", clip_id, scorer, backend), clip_id=clip_id, scorer=scorer, backend=backend,
                   scorer_version="1", status="ok", run_id=run_id) for scorer, backend in done], ["clip_id", "scorer", "backend"])  # fmt: skip
            if i < 10:
                add_scores(session, clip_id, run_id, shift=i / 10)
        bad = {**{(c, "quality_technical"): 30.0 + i for i, c in enumerate(clips[:8])}, (clips[2], "avg_movement"): 70.0,
               (clips[8], "motion_valid_ratio_paper"): 0.99, (clips[9], "motion_valid_ratio_paper"): 0.2}  # fmt: skip
        for (clip_id, metric), value in bad.items():
            session.execute(update(Score).where(Score.clip_id == clip_id, Score.metric == metric).values(value=value))
        upsert(session, Score, [dict(id=make_id("score", clips[10], "classical", "quality_technical"), clip_id=clips[10], metric="quality_technical",
               scorer="quality", scorer_version="1", backend="classical", run_id=run_id, value=35.0)], ["clip_id", "backend", "metric"])  # fmt: skip
        airflow = dict(dag_id="talkvid_process", dag_run_id="scheduled__2026-03-02T00:00:00+00:00", code_version="test", status="succeeded")
        session.add(Run(id="mapped-score-run", stage="score", task_id="score", map_index=3, **airflow))
        session.add(Run(id="plain-segment-run", stage="segment", task_id="plan_segment", map_index=-1, **airflow))
        session.commit()
    for profile in ("talkvid-code", "talkvid-paper"):
        decide(ctx, profile)
    with ctx.sessions() as session:
        add_scores(session, clips[12], run_id)  # scored after the last decide
        passed = session.scalars(select(Decision.clip_id).join(Profile).where(Profile.name == "talkvid-code", Decision.status == "passed")).all()
        write_labels(session, [label_row("clip", passed[0], "age_group", "adult", 0.9, "estimated", "test", run_id)])
        session.add(FaceEmbedding(id=make_id("face", passed[0]), clip_id=passed[0], model=FaceDescriptor.MODEL, vector=[0.0] * 128, frames=1, run_id=run_id))
        session.commit()
    thumbnails = {}
    for clip_id in clips[:10:2]:
        path = thumbnail_path(ctx.settings.data_dir, clip_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (160, 90), THUMBNAIL_COLOR).save(path, "JPEG")
        thumbnails[clip_id] = path.read_bytes()
    return {"url": url, "data_dir": ctx.settings.data_dir, "clips": clips, "thumbnails": thumbnails, "params_hash": params_hash,
            "sources": {"active": active, "throttled": throttled, "disabled": disabled}}  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def curated(request, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp(f"curated-{request.param}")
    url = f"sqlite:///{root / 'catalog.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_server").create_database()
    db.upgrade(url)
    yield curated_catalog(url, root)
    db.get_engine(url).dispose()


def section(page: str, title: str) -> str:
    """The HTML between the <h2> named `title` and the next <h2>."""
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start : end if end > 0 else None]


def test_rejections_sources_pending_work_and_task_links(curated, client, monkeypatch):
    """Each figure of the new sections against the catalog, counted here in SQL and Python of its own."""
    use_catalog(monkeypatch, curated["url"], curated["data_dir"])
    page = client.get("/")
    assert page.status_code == 200, page.text
    report = client.get("/api/status").json()
    with db.session_factory(curated["url"])() as session:
        failures = session.execute(
            select(Profile.name, Profile.content_hash, DecisionFailure, Decision.clip_id)
            .join(Decision, Decision.id == DecisionFailure.decision_id)
            .join(Profile, Profile.id == Decision.profile_id)
        ).all()
        scorings = set(session.execute(select(Scoring.clip_id, Scoring.scorer, Scoring.backend)).all())
        scored = session.execute(select(Score.clip_id, Score.created_at)).all()
        decisions = session.execute(select(Profile.name, Profile.content_hash, Decision.clip_id, Decision.status, Decision.decided_at).join(Profile)).all()
        labelled = set(session.scalars(select(Label.subject_id).where(Label.name == "age_group", Label.provenance == "estimated")))
        described = set(session.scalars(select(FaceEmbedding.clip_id)))
        all_clips = set(session.scalars(select(Clip.id)))

    # rejections: per profile and criterion the clips that failed it, six of them with value, bound and backend
    expected: dict[str, dict[str, list]] = {}
    for name, chash, failure, clip_id in failures:
        expected.setdefault(f"{name}@{chash}", {}).setdefault(failure.criterion, []).append((failure.id, clip_id, failure))
    assert {p: {c: entry["count"] for c, entry in criteria.items()} for p, criteria in report["rejections"].items()} == {
        p: {c: len(rows) for c, rows in criteria.items()} for p, criteria in expected.items()
    }
    code = next(p for p in expected if p.startswith("talkvid-code@"))
    paper = next(p for p in expected if p.startswith("talkvid-paper@"))
    assert len(expected[code]["quality"]) == 9 and set(expected[paper]) == {"quality", "motion", "avg_movement"}
    rejections = section(page.text, "Rejections per criterion")
    for profile, criteria in expected.items():
        for criterion, rows in criteria.items():
            latest = sorted(rows, key=lambda row: row[1], reverse=True)[:6]  # the six highest clip ids
            shown = report["rejections"][profile][criterion]["examples"]
            assert [x["clip_id"] for x in shown] == [clip_id for _, clip_id, _ in latest]
            for (_, clip_id, failure), example in zip(latest, shown):
                assert (example["value"], example["min"], example["max"], example["backend"]) == (
                    failure.value, failure.min_value, failure.max_value, failure.backend)  # fmt: skip
                assert example["thumbnail"] == (clip_id in curated["thumbnails"])
                low, high = failure.min_value, failure.max_value
                bound = f"&lt; min {low:.4g}" if low is not None and failure.value < low else f"&gt; max {high:.4g}"
                assert f'href="clips/{clip_id}"' in rejections and f"{failure.value:.4g} {bound} ({failure.backend})" in rejections
    parts = PageParts(rejections)
    assert [row[1] for row in parts.rows if row and row[0] == "quality"] == [str(len(expected[p]["quality"])) for p in sorted(expected)]
    shown_ids = {x["clip_id"] for criteria in report["rejections"].values() for e in criteria.values() for x in e["examples"]}
    assert set(parts.images) == {f"thumbnails/{c}.jpg" for c in shown_ids & set(curated["thumbnails"])}
    assert shown_ids - set(curated["thumbnails"])  # clips without a thumbnail show their id instead
    for clip_id in shown_ids - set(curated["thumbnails"]):
        assert f'<span class="noimg">{clip_id}</span>' in rejections

    # thumbnails: the stored file, 404 otherwise, and nothing outside the thumbnails folder
    clip_id, jpeg = next(iter(curated["thumbnails"].items()))
    served = client.get(f"thumbnails/{clip_id}.jpg")
    assert (served.status_code, served.headers["content-type"], served.content) == (200, "image/jpeg", jpeg)
    without = next(iter(shown_ids - set(curated["thumbnails"])))
    assert client.get(f"thumbnails/{without}.jpg").status_code == 404
    (curated["data_dir"] / "secret.jpg").write_bytes(b"not yours")
    for probe in ("..%2Fsecret", "..%2F..%2Fdata%2Fsecret", "%2E%2E%2Fsecret", "..secret"):
        assert client.get(f"thumbnails/{probe}.jpg").status_code == 404

    # sources: every source with its state, back-off, videos per status, last crawl and its last error, redacted
    by_source = {s["id"]: s for s in report["sources"]}
    assert set(by_source) == set(curated["sources"].values())
    assert by_source[curated["sources"]["throttled"]]["videos"] == {"probed": 2, "discovered": 1}
    assert grouped(curated["url"], Video.source_id) == {k: sum(s["videos"].values()) for k, s in by_source.items() if s["videos"]}
    sources = PageParts(section(page.text, "Sources"))
    throttled = next(row for row in sources.rows if "https://busy.example.invalid/channel" in row[0])
    assert throttled[1:6] == ["channel", "yes", "paused until 2031-05-04 03:02:01", "3", "discovered=1, probed=2"]
    assert throttled[7].startswith("throttled: HTTP Error 429 from https://bob:***@proxy.example.invalid/list retry later")
    assert len(throttled[7]) <= 300 and "hunter22" not in page.text + json.dumps(report)
    active = next(row for row in sources.rows if "talks.example.invalid" in row[0])
    assert (active[3], active[6], active[7]) == ("active", "2026-03-01 12:00:00", "")
    assert next(row for row in sources.rows if row[1] == "folder")[2] == "no"

    # pending work, as the next runs would take it
    pending = report["pending"]
    assert pending["segment"] == {"params_hash": curated["params_hash"], "videos": 2}  # the new one and the retried one
    configured = [("quality", "classical"), ("motion", "lk"), ("head", "dlib")]
    expected_score = {f"{s}/{b}": len({c for c in all_clips if (c, s, b) not in scorings}) for s, b in configured}
    assert pending["score"] == expected_score and any(expected_score.values())
    decided: dict[str, dict] = {}
    for name, chash, clip_id, _, decided_at in decisions:
        decided.setdefault(f"{name}@{chash}", {})[clip_id] = decided_at
    # scored clips without a decision, or scored after it (the clip scored after the last decide)
    owed = {p: {c for c, at in scored if c not in by_clip or at > by_clip[c]} for p, by_clip in decided.items()}
    assert pending["decide"] == {p: len(c) for p, c in owed.items()} and all(c == {curated["clips"][12]} for c in owed.values())
    passed = {p: {c for n, h, c, status, _ in decisions if f"{n}@{h}" == p and status == "passed"} for p in decided}
    # the curate stages' work of the profile the next curate run applies (curate.profile: talkvid-code)
    assert pending["curate"] == {
        code: {"passed": len(passed[code]), "without_labels": len(passed[code] - labelled), "without_speaker": len(passed[code] - described)}
    }
    table = PageParts(section(page.text, "Pending work"))
    assert table.row("segment")[1] == "2" and table.row("score motion/lk")[1] == str(expected_score["motion/lk"])
    assert table.row(f"decide {code}")[1] == "1"
    assert table.row(f"labels {code}")[1] == str(len(passed[code]) - 1) and table.row(f"speakers {code}")[1] == str(len(passed[code]) - 1)

    # runs link to their task instance in the Airflow UI: mapped ones to their map index
    runs = PageParts(section(page.text, "Recent runs"))
    run_id = "scheduled__2026-03-02T00%3A00%3A00%2B00%3A00"
    mapped = f"../dags/talkvid_process/runs/{run_id}/tasks/score/mapped/3"
    plain = f"../dags/talkvid_process/runs/{run_id}/tasks/plan_segment"
    assert runs.links[mapped]["target"] == runs.links[plain]["target"] == "_top"
    assert all(under_page_or_airflow_ui(h) for h in PageParts(page.text).hrefs)


def test_task_links_follow_the_installed_airflow_ui_routes():
    """The links of runs fill in the task instance routes of the Airflow UI that is installed (its router, compiled
    into the UI bundle): an Airflow upgrade that moves them fails here."""
    from importlib.util import find_spec

    from talkvid_ops.dashboard.page import task_instance_link

    airflow_dir = Path(find_spec("airflow").origin).parent  # found, not imported: the airflow fixtures configure it first
    bundle = "".join(p.read_text(errors="replace") for p in (airflow_dir / "ui" / "dist" / "assets").glob("index-*.js"))
    values = {":dagId": "talkvid_process", ":runId": "manual__2026-03-01T00%3A00%3A00%2B00%3A00", ":taskId": "score", ":mapIndex": "7"}
    for route, map_index in [("dags/:dagId/runs/:runId/tasks/:taskId", None), ("dags/:dagId/runs/:runId/tasks/:taskId/mapped/:mapIndex", 7)]:
        assert f"path:`{route}`" in bundle
        filled_in = route
        for name, value in values.items():
            filled_in = filled_in.replace(name, value)
        assert task_instance_link("talkvid_process", "manual__2026-03-01T00:00:00+00:00", "score", map_index) == "../" + filled_in


def test_the_dashboard_app_needs_no_airflow(tmp_path):
    """The library's app imports and answers in an interpreter where importing Airflow fails (the plugin only
    mounts it)."""
    missing = tmp_path / "catalog.sqlite"
    script = (
        "import json, sys\n"
        "sys.modules['airflow'] = None  # any import of airflow raises ImportError from here on\n"
        "from fastapi.testclient import TestClient\n"
        "from talkvid_ops.dashboard.app import create_app\n"
        "response = TestClient(create_app()).get('/api/status')\n"
        "print(json.dumps([response.status_code, response.json()['reason']]))"
    )
    env = {**os.environ, "TALKVID_DATABASE_URL": f"sqlite:///{missing}", "TALKVID_DATA_DIR": str(tmp_path)}
    env.pop("TALKVID_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == [503, f"no catalog file at {missing}: run `talkvid init`"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreadable_catalog_answers_503_with_the_reason(client, pg_server, tmp_path, monkeypatch):
    port = free_port()  # nothing listens there
    use_catalog(monkeypatch, f"postgresql+psycopg2://talkvid:s3cret@127.0.0.1:{port}/talkvid", tmp_path)
    response = client.get("/api/status")
    assert response.status_code == 503
    body = response.json()
    assert body["catalog"] == f"postgresql+psycopg2://talkvid:***@127.0.0.1:{port}/talkvid"
    assert body["reason"].startswith('cannot reach the catalog: connection to server at "127.0.0.1"') and "refused" in body["reason"]
    page = client.get("/")
    assert page.status_code == 503 and "cannot reach the catalog" in page.text and "***" in page.text
    assert "s3cret" not in response.text + page.text and "Traceback" not in page.text

    missing = tmp_path / "nowhere" / "catalog.sqlite"
    use_catalog(monkeypatch, f"sqlite:///{missing}", tmp_path)
    response = client.get("/api/status")
    assert response.status_code == 503 and response.json()["reason"] == f"no catalog file at {missing}: run `talkvid init`"
    assert not missing.parent.exists()  # looking did not create a catalog

    use_catalog(monkeypatch, pg_server.create_database(), tmp_path)  # a database nobody ran `talkvid init` on
    response = client.get("/api/status")
    assert response.status_code == 503 and response.json()["reason"] == "the catalog is not initialised: run `talkvid init`"

    bad_config = tmp_path / "talkvid.yaml"
    bad_config.write_text("score:\n  batch_size: many\n")
    monkeypatch.setenv("TALKVID_CONFIG", str(bad_config))
    response = client.get("/")
    assert response.status_code == 503 and "talkvid settings are invalid" in response.text and "batch_size" in response.text


AIRFLOW_CHECK = r"""
import json, sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
out = {"plugins": [p.name for p in plugins], "errors": errors,
       "heavy_after_load": sorted(m for m in HEAVY if m in sys.modules),
       "talkvid_after_load": sorted(m for m in sys.modules if m.split(".")[0] == "talkvid_ops")}
out["fastapi_apps"] = [{k: v for k, v in a.items() if k != "app"} for a in plugins_manager.get_fastapi_plugins()[0]]
out["external_views"] = plugins_manager._get_ui_plugins()[0]

from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
client = TestClient(create_app("core"))
token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
bearer = {"Authorization": f"Bearer {token}"}
anonymous = client.get("/talkvid/api/status")
forged = client.get("/talkvid/api/status", headers={"Authorization": "Bearer " + token[:-4] + "AAAA"})
status = client.get("/talkvid/api/status", headers=bearer)
page = client.get("/talkvid/", cookies={"_token": token})  # what the UI's iframe sends
listed = client.get("/api/v2/plugins", headers=bearer).json()["plugins"]
out.update(anonymous=anonymous.status_code, forged=forged.status_code, status=status.status_code,
           videos=status.json()["status"]["videos"], page=page.status_code, page_title="<h1>talkvid catalog</h1>" in page.text,
           listed=[p for p in listed if p["name"] == "talkvid_catalog"],
           heavy_after_request=sorted(m for m in HEAVY if m in sys.modules))
print("RESULT " + json.dumps(out))
"""


def test_airflow_loads_mounts_and_guards_the_plugin(airflow_db, tmp_path):
    """In a fresh interpreter, as the API server runs it: Airflow's plugins manager finds the plugin without importing
    talkvid's settings, stages or a model library, validates its nav entry, mounts the app at /talkvid behind its own login."""
    catalog = sqlite_catalog(tmp_path)
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS), "TALKVID_DATABASE_URL": catalog["url"],
           "TALKVID_DATA_DIR": str(catalog["data_dir"])}  # fmt: skip
    env.pop("TALKVID_CONFIG", None)
    script = f"HEAVY = {HEAVY!r}\n" + AIRFLOW_CHECK
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    out = json.loads(line[len("RESULT ") :])
    assert out["plugins"] == ["talkvid_catalog"] and out["errors"] == {}
    assert out["heavy_after_load"] == []
    assert "talkvid_ops.dashboard.app" in out["talkvid_after_load"] and set(out["talkvid_after_load"]) <= TALKVID_AT_PLUGIN_LOAD
    assert out["fastapi_apps"] == [{"url_prefix": "/talkvid", "name": "talkvid catalog"}]
    nav_entry = {"name": "Catalog", "href": "talkvid/", "url_route": "talkvid-catalog", "destination": "nav", "category": "browse"}
    assert out["external_views"] == [nav_entry]
    assert (out["anonymous"], out["forged"], out["status"], out["page"], out["page_title"]) == (401, 403, 200, 200, True)
    assert out["videos"] == grouped(catalog["url"], Video.status)
    (listed,) = out["listed"]
    assert listed["external_views"][0]["href"] == "talkvid/" and listed["fastapi_apps"][0]["url_prefix"] == "/talkvid"
    assert out["heavy_after_request"] == []


def test_the_page_renders_in_chromium(tmp_path, monkeypatch):
    """Served by uvicorn under the same prefix as in Airflow; the screenshot shows text, the decision bar and the
    rejected clips' thumbnails (loaded by the browser through the thumbnail route)."""
    import uvicorn
    from fastapi import FastAPI

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    catalog = curated_catalog(url, tmp_path)
    use_catalog(monkeypatch, catalog["url"], catalog["data_dir"])
    root = FastAPI()
    root.mount("/talkvid", create_app())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        shot = tmp_path / "dashboard.png"
        subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,3000", f"--screenshot={shot}",
                        f"http://127.0.0.1:{port}/talkvid/"], check=True, capture_output=True, timeout=60)  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 3000)
    colors = image.getcolors(maxcolors=1 << 20)
    background = max(colors)[1]
    inked = sum(n for n, c in colors if sum(abs(a - b) for a, b in zip(c, background)) > 60)
    assert inked > 0.01 * image.size[0] * image.size[1]  # text and tables, not a blank or error page
    counts = {c: n for n, c in colors}
    assert counts.get((0x2E, 0x7D, 0x32), 0) > 200 and counts.get((0xC6, 0x28, 0x28), 0) > 50  # the passed and failed bar
    thumbnail_pixels = sum(n for n, c in colors if sum(abs(a - b) for a, b in zip(c, THUMBNAIL_COLOR)) < 30)
    assert thumbnail_pixels > 2 * 160 * 90  # several thumbnails drawn whole
