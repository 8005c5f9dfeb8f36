"""The catalog page (`/` of the dashboard app, through FastAPI's TestClient) on a catalog of 200,000 clips.

The catalog is generated inside the database by set-based INSERT ... SELECT statements: 60 sources (some paused
with an error), 10,000 videos (probed, failed, discovered; segmented with the current parameters but 1 %), 20 clips
per video, three scorings per clip (1 % missing one, 0.5 % failed), the 20 metrics the CPU backends write per clip,
decisions of both shipped profiles with one to three failing criteria per failed clip (one criterion rare), a few
clips scored again (by a later run) after the decisions, labels and speakers for part of the passed clips, one score run (a mapped Airflow task) per 200 clips and a decide run per profile.
Then the page is requested a few times; the median is compared with the 1 s target. SQLite always; PostgreSQL
(a throwaway server, as the tests start one) with --postgres.

Usage: python benchmarks/bench_page.py [--clips 200000] [--requests 5] [--postgres]
Results: benchmarks/results/page.json and page.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import DateTime, bindparam, text

from talkvid_ops.catalog import db
from talkvid_ops.catalog.runs import code_version
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import store_profile
from talkvid_ops.curate.face_models import FaceDescriptor
from talkvid_ops.curate.profiles import load_profile

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 1.0
CLIPS_PER_VIDEO = 20
BATCH = 200  # clips per score run (one mapped task each), as score.batch_size
METRICS = [  # metric, scorer, backend: what the CPU backends write per clip
    *[(m, "quality", "classical") for m in ("quality_technical", "quality_sharpness", "quality_exposure", "quality_clipping",
                                             "quality_noise", "quality_blockiness", "quality_brisque")],
    ("motion_valid_ratio_paper", "motion", "lk"), ("motion_visibility_code", "motion", "lk"),
    *[(m, "head", "dlib") for m in ("avg_movement", "min_movement", "avg_rotation", "min_rotation", "avg_orientation",
                                     "min_orientation", "avg_completeness", "min_completeness", "avg_resolution",
                                     "min_resolution", "face_consistency")],
]  # fmt: skip
# criterion, metric, backend, min, max, which failed clips (by number) fail it
FAILURES = [
    ("quality", "quality_technical", "classical", 40.0, None, "i % 3 = 0"),
    ("avg_movement", "avg_movement", "dlib", 80.0, None, "i % 3 = 1"),
    ("min_resolution", "min_resolution", "dlib", 40.0, None, "i % 7 = 0"),
    ("face_consistency", "face_consistency", "dlib", 80.0, None, "i % 3 = 2"),
    ("avg_completeness", "avg_completeness", "dlib", 100.0, None, "i % 5003 = 0"),  # a rare one: the examples' worst case
]
HEX = {"sqlite": "printf('%024x', {})", "postgresql": "lpad(to_hex({}), 24, '0')"}
NUMBERS = {
    "sqlite": "INSERT INTO bench_n (i) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) SELECT i FROM n",
    "postgresql": "INSERT INTO bench_n (i) SELECT generate_series(1, :count)",
}
TRUE = {"sqlite": "1", "postgresql": "true"}


def statements(dialect: str, clips: int, params_hash: str, profiles: list[tuple[str, str, str]]) -> list[str]:
    """The INSERT ... SELECT statements that fill the catalog; `bench_n` holds the numbers 1..clips."""

    def hex_id(kind: int, expr: str) -> str:  # ids that look like ours: 24 hex digits, the first one the row's kind
        return HEX[dialect].format(f"({kind} * 1099511627776 * 65536 + {expr})")

    videos = clips // CLIPS_PER_VIDEO
    video = f"{hex_id(2, '((i - 1) / ' + str(CLIPS_PER_VIDEO) + ' + 1)')}"
    metrics = " UNION ALL ".join(f"SELECT '{m}' AS metric, '{s}' AS scorer, '{b}' AS backend, {k} AS k" for k, (m, s, b) in enumerate(METRICS))
    out = [
        "CREATE TABLE bench_n (i INTEGER PRIMARY KEY)",
        NUMBERS[dialect],
        f"""INSERT INTO run (id, stage, params, code_version, status, started_at, finished_at, counts, errors, dag_id, dag_run_id, task_id,
                             map_index)
            SELECT 'run' || i, 'score', '{{}}', '{code_version()}', CASE WHEN i % 17 = 0 THEN 'partial' ELSE 'succeeded' END,
                   :scored_at, :scored_at, '{{"clips": {BATCH}}}', '[]', 'talkvid_process',
                   'scheduled__2026-03-' || (10 + i % 18) || 'T00:00:00+00:00', 'score', i % 64
            FROM bench_n WHERE i <= {clips // BATCH}""",
        f"""INSERT INTO run (id, stage, params, code_version, status, started_at, finished_at, counts, errors)
            SELECT name, name, '{{}}', '{code_version()}', 'succeeded', :scored_at, finish, '{{}}', '[]'
            FROM (SELECT 'segment' AS name, :scored_at AS finish UNION ALL SELECT 'rescore', :now) r""",
        f"""INSERT INTO source (id, kind, locator, name, enabled, settings, status, paused_until, backoff_level, last_error,
                                last_crawled_at, created_at, updated_at)
            SELECT {hex_id(1, "i")}, 'channel', 'https://videos.example.invalid/channel/' || i, 'channel ' || i, {TRUE[dialect]}, '{{}}',
                   CASE WHEN i % 10 = 0 THEN 'paused' ELSE 'active' END, CASE WHEN i % 10 = 0 THEN :later END, i % 4,
                   CASE WHEN i % 10 = 0 THEN 'throttled: HTTP Error 429: Too Many Requests' END, :now, :now, :now
            FROM bench_n WHERE i <= 60""",
        f"""INSERT INTO video (id, source_id, platform, platform_id, status, storage_path, error_class, error_message, attempts,
                               availability, created_at, updated_at)
            SELECT {hex_id(2, "i")}, {hex_id(1, "(1 + i % 60)")}, 'bench', 'v' || i,
                   CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'discovered' ELSE 'probed' END,
                   CASE WHEN i % 50 > 1 THEN '/media/v' || i || '.mp4' END,
                   CASE WHEN i % 50 = 0 THEN 'permanent' END, CASE WHEN i % 50 = 0 THEN 'Private video' END, 1,
                   CASE WHEN i % 500 = 2 THEN 'gone' ELSE 'available' END, :now, :now
            FROM bench_n WHERE i <= {videos}""",
        f"""INSERT INTO segmentation (id, video_id, segmenter, segmenter_version, params_hash, status, clip_count, shots, speech,
                                      details, run_id, created_at, updated_at)
            SELECT {hex_id(3, "i")}, {hex_id(2, "i")}, 'bench', '1', '{params_hash}', 'done', {CLIPS_PER_VIDEO}, '[]', '[]', '{{}}',
                   'segment', :now, :now
            FROM bench_n WHERE i <= {videos} AND i % 50 > 1 AND i % 100 <> 7""",
        f"""INSERT INTO clip (id, video_id, segmenter, segmenter_version, params_hash, params, start_time, end_time, start_frame,
                              end_frame, fps, duration, run_id, created_at, updated_at)
            SELECT {hex_id(4, "i")}, {video}, 'bench', '1', '{params_hash}', '{{}}', (i % {CLIPS_PER_VIDEO}) * 10.0,
                   (i % {CLIPS_PER_VIDEO}) * 10.0 + 8, (i % {CLIPS_PER_VIDEO}) * 250, (i % {CLIPS_PER_VIDEO}) * 250 + 200, 25.0, 8.0,
                   'segment', :now, :now
            FROM bench_n""",
        f"""INSERT INTO scoring (id, clip_id, scorer, backend, scorer_version, status, error, details, run_id, created_at, updated_at)
            SELECT {hex_id(5, "(i * 4 + s.k)")}, {hex_id(4, "i")}, s.scorer, s.backend, '1',
                   CASE WHEN i % 200 = s.k THEN 'failed' ELSE 'ok' END, CASE WHEN i % 200 = s.k THEN 'no face found' END, '{{}}',
                   'run' || (1 + (i - 1) / {BATCH}), :scored_at, :scored_at
            FROM bench_n CROSS JOIN (SELECT 'quality' AS scorer, 'classical' AS backend, 0 AS k UNION ALL
                                     SELECT 'motion', 'lk', 1 UNION ALL SELECT 'head', 'dlib', 2) s
            WHERE NOT (s.k = 2 AND i % 100 = 3)""",
        f"""INSERT INTO score (id, clip_id, metric, value, scorer, scorer_version, backend, run_id, created_at)
            SELECT {hex_id(6, f"(i * {len(METRICS)} + m.k)")}, {hex_id(4, "i")}, m.metric, (i * 7 + m.k * 13) % 100, m.scorer, '1',
                   m.backend, CASE WHEN i % 1000 = 11 THEN 'rescore' ELSE 'run' || (1 + (i - 1) / {BATCH}) END, CASE WHEN i % 1000 = 11 THEN :now ELSE :scored_at END
            FROM bench_n CROSS JOIN ({metrics}) m""",
    ]
    for p, (profile_id, name, content_hash) in enumerate(profiles):
        out.append(f"""INSERT INTO run (id, stage, params, code_version, status, started_at, finished_at, counts, errors)
            VALUES ('decide-{p}', 'decide', '{{"profile": "{name}", "content_hash": "{content_hash}"}}', '{code_version()}', 'succeeded',
                    :decided_at, :decided_at, '{{}}', '[]')""")
        status = f"CASE WHEN (i + {p}) % 10 < 5 THEN 'passed' WHEN (i + {p}) % 10 < 9 THEN 'failed' ELSE 'undecided' END"
        out.append(f"""INSERT INTO decision (id, clip_id, profile_id, status, missing, run_id, decided_at)
            SELECT '{profile_id}' || {hex_id(4, "i")}, {hex_id(4, "i")}, '{profile_id}', {status}, '[]', 'decide-{p}', :decided_at
            FROM bench_n""")
        for criterion, metric, backend, low, high, which in FAILURES:
            high_sql = "NULL" if high is None else str(high)
            out.append(f"""INSERT INTO decision_failure (decision_id, criterion, metric, backend, value, min_value, max_value)
                SELECT '{profile_id}' || {hex_id(4, "i")}, '{criterion}', '{metric}', '{backend}', {low} - 1 - i % 30, {low}, {high_sql}
                FROM bench_n WHERE (i + {p}) % 10 BETWEEN 5 AND 8 AND {which}""")
    out += [
        f"""INSERT INTO label (id, subject_kind, subject_id, name, value, confidence, provenance, origin, created_at, updated_at)
            SELECT {hex_id(7, "i")}, 'clip', {hex_id(4, "i")}, 'age_group', 'adult', 0.9, 'estimated', 'bench', :now, :now
            FROM bench_n WHERE i % 10 < 6 AND i % 4 <> 0""",
        f"""INSERT INTO face_embedding (id, clip_id, model, vector, frames, run_id, created_at)
            SELECT {hex_id(9, "i")}, {hex_id(4, "i")}, '{FaceDescriptor.MODEL}', NULL, 3, 'segment', :now
            FROM bench_n WHERE i % 10 < 5 AND i % 3 <> 0""",
        "DROP TABLE bench_n",
        "ANALYZE",
    ]
    return out


def populate(url: str, clips: int, params_hash: str) -> float:
    """Fill the catalog; returns the seconds it took."""
    started = time.perf_counter()
    ctx = Context(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-page-")), database_url=url))
    with ctx.sessions() as session:
        profiles = [(store_profile(session, p), p.name, p.content_hash) for p in map(load_profile, ("talkvid-code", "talkvid-paper"))]
        session.commit()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    times = {"now": now, "later": now + dt.timedelta(hours=6), "scored_at": now - dt.timedelta(hours=2), "decided_at": now - dt.timedelta(hours=1)}
    engine = db.get_engine(url)
    with engine.begin() as conn:
        for statement in statements(engine.dialect.name, clips, params_hash, profiles):
            query = text(statement)
            used = {name: value for name, value in times.items() if f":{name}" in statement}
            query = query.bindparams(*(bindparam(name, type_=DateTime(timezone=True)) for name in used))
            conn.execute(query, {**used, "count": clips})
    if engine.dialect.name == "postgresql":  # what autovacuum does to a catalog soon after a load: visibility map, statistics
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def time_page(url: str, data_dir: Path, requests: int) -> dict:
    """The page's answer times through the app (the first request, which imports the queries, apart)."""
    from fastapi.testclient import TestClient

    from talkvid_ops.dashboard.app import create_app

    os.environ.update({"TALKVID_DATABASE_URL": url, "TALKVID_DATA_DIR": str(data_dir)})
    os.environ.pop("TALKVID_CONFIG", None)
    seconds, cpu = [], []
    with TestClient(create_app()) as client:
        for _ in range(requests + 1):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get("/")
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            if response.status_code != 200:
                raise SystemExit(f"the page answered {response.status_code}: {response.text[:500]}")
    return {"first_s": seconds[0], "seconds": seconds[1:], "median_s": statistics.median(seconds[1:]),
            "median_cpu_s": statistics.median(cpu[1:]), "page_bytes": len(response.content)}  # fmt: skip


def measure(label: str, url: str, clips: int, requests: int) -> dict:
    params_hash = PipelineConfig().segment.params_hash
    db.upgrade(url)
    fill_s = populate(url, clips, params_hash)
    print(f"{label}: {clips:,} clips generated in {fill_s:.1f} s", flush=True)
    timing = time_page(url, Path(tempfile.mkdtemp(prefix="bench-page-data-")), requests)
    ratio = timing["median_s"] / TARGET_S
    print(
        f"{label}: page median {timing['median_s'] * 1000:.0f} ms of {requests} requests (first {timing['first_s'] * 1000:.0f} ms, "
        f"{timing['page_bytes'] / 1024:.0f} KiB; this process's CPU {timing['median_cpu_s'] * 1000:.0f} ms): {ratio:.2f}x the "
        f"{TARGET_S:.0f} s target",
        flush=True,
    )
    db.get_engine(url).dispose()
    return {"database": label, "clips": clips, "fill_s": fill_s, **timing, "target_s": TARGET_S, "ratio_to_target": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also measure on a throwaway PostgreSQL server")
    args, _ = parser.parse_known_args()  # run_all.py passes every benchmark the same arguments

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-page-") as folder:
        results.append(measure("sqlite", f"sqlite:///{Path(folder) / 'catalog.sqlite'}", args.clips, args.requests))
    if args.postgres:
        from talkvid_ops.catalog.pgserver import PostgresServer

        with PostgresServer() as server:
            results.append(measure("postgresql", server.create_database("bench_page"), args.clips, args.requests))

    load = os.getloadavg()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "page.json").write_text(json.dumps({"date": stamp, "load_average": load, "results": results}, indent=1) + "\n")
    lines = [f"Catalog page (`/`, TestClient) on {args.clips:,} clips ({stamp}, load average {load[0]:.2f}), median of {args.requests} requests:", ""]
    lines += ["| database | fill | first request | median | CPU of this process (median) | vs 1 s target |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['database']} | {r['fill_s']:.1f} s | {r['first_s'] * 1000:.0f} ms | {r['median_s'] * 1000:.0f} ms | {r['median_cpu_s'] * 1000:.0f} ms "
        f"| {r['ratio_to_target']:.2f}x |"
        for r in results
    ]
    lines += ["", "SQLite runs inside the measuring process, so its CPU column includes the queries; PostgreSQL's server CPU is not in it."]
    (RESULTS / "page.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
