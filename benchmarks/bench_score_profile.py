"""Where one clip's scoring time goes, and the best ratios exact numbers allow on this machine.

Measured in one run, on the first clip of each bench_score.py batch (`make bench` runs this after bench_score.py):

- ours: cProfile of `score_clip` (the CPU defaults, models loaded first, OpenCV on one thread as in a score worker);
- the floor: PyAV's decode of the clip with threads on, its wall time and the CPU time it used;
- TalkVid's order for the clip (bench_score.talkvid_clip: re-encode, then each scorer decodes), its CPU time with
  ffmpeg's.

The exact models' calls -- Lucas-Kanade tracking, BRISQUE, dlib's face detector and landmark predictor -- do the
defined work and cannot get cheaper without changing a number; decoding the clip cannot either. So with W workers on
W cores the stage needs at least (models + decode CPU) per clip, its throughput is at most
floor wall x W / (models + decode CPU), and it is at most TalkVid CPU / (models + decode CPU) faster than TalkVid's
order (which runs the same models). The machine's speed drifts by tens of percent between runs (shared host), so
only figures from one run are compared.

    python benchmarks/bench_score_profile.py [--batches 720p,1080p]

Results: benchmarks/results/score-profile.md and score-profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import tempfile
import time
from pathlib import Path

from bench_score import CLIP_SECONDS, RESULTS, bench_clips, cpu_count, decode_floor, machine, talkvid_clip

# The exact models' work, by cProfile's key (file ending, function name): the built-in calls' own time, and for dlib
# (called as objects, which cProfile does not see) the own time of the two methods that call it.
EXACT_WORK = {
    "Lucas-Kanade": [("~", "<calcOpticalFlowPyrLK>")],
    "BRISQUE": [("~", "<method 'compute' of 'cv2.quality.QualityBRISQUE' objects>")],
    "dlib": [("media/faces.py", "boxes"), ("media/faces.py", "points")],
}


def profile_clip(path: Path) -> tuple[float, pstats.Stats]:
    """CPU seconds of scoring the clip once (after a warm-up that loads the models), and the profile."""
    import cv2

    from talkvid_ops.config.score import ScoreConfig
    from talkvid_ops.score.stage import score_clip, scorers_for

    cv2.setNumThreads(1)
    scorers = scorers_for(ScoreConfig())
    score_clip(path, 0.0, CLIP_SECONDS, 0, scorers)
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.runcall(score_clip, path, 0.0, CLIP_SECONDS, 0, scorers)
    return time.process_time() - started, pstats.Stats(profiler)


def own_seconds(stats: pstats.Stats, keys: list[tuple[str, str]]) -> float:
    return sum(own for (file, _, name), (_, _, own, _, _) in stats.stats.items() for end, wanted in keys if file.endswith(end) and name == wanted)


def c_functions(stats: pstats.Stats) -> list[tuple[str, int, float]]:
    """(name, calls, own seconds) of the built-in functions and methods, most expensive first."""
    rows = [(name, calls, own) for (file, _, name), (_, calls, own, _, _) in stats.stats.items() if file == "~"]
    return sorted(rows, key=lambda row: -row[2])


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (ffmpeg)."""
    return time.process_time() + sum(getattr(resource.getrusage(resource.RUSAGE_CHILDREN), f) for f in ("ru_utime", "ru_stime"))


def decode_costs(path: Path, repeat: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds of the floor's decode of one clip, the fastest of `repeat`."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        decode_floor([path])
        best = min(best, (time.perf_counter() - wall, cpu_seconds() - cpu))
    return best


def talkvid_cpu(path: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = cpu_seconds()
        talkvid_clip((str(path), tmp))
        return cpu_seconds() - started


def profile_batch(batch: str, path: Path, cores: int) -> tuple[dict, list[str]]:
    floor_wall, decode_cpu = decode_costs(path)
    ours_cpu, stats = profile_clip(path)
    talkvid = talkvid_cpu(path)
    exact = {label: own_seconds(stats, keys) for label, keys in EXACT_WORK.items()}
    least = sum(exact.values()) + decode_cpu  # CPU seconds a clip takes at least with exact numbers
    functions = c_functions(stats)
    entry = {
        "clip": path.name,
        "ours_cpu_s": ours_cpu,
        "talkvid_cpu_s": talkvid,
        "decode_floor_wall_s": floor_wall,
        "decode_cpu_s": decode_cpu,
        "exact_work_s": exact,
        "least_cpu_s": least,
        "ours_vs_floor": floor_wall * cores / ours_cpu,
        "best_vs_floor": floor_wall * cores / least,
        "ours_vs_talkvid": talkvid / ours_cpu,
        "best_vs_talkvid": talkvid / least,
        "top_c_functions": [{"name": name, "calls": calls, "own_s": own} for name, calls, own in functions[:8]],
    }
    lines = [
        f"### {batch}: {path.name}, {CLIP_SECONDS:g} s",
        "",
        f"Scored in {ours_cpu:.1f} CPU s (one process, profiled); TalkVid's order took {talkvid:.1f} CPU s (ffmpeg's "
        f"included); decoding the clip {decode_cpu:.2f} CPU s, {floor_wall:.2f} s wall with threads on.",
        "",
        "| built-in call (own time) | calls | seconds | share of ours |",
        "| --- | --- | --- | --- |",
        *(f"| `{name}` | {calls:,} | {own:.2f} | {own / ours_cpu:.0%} |" for name, calls, own in functions[:8]),
        "",
        f"Exact work: {', '.join(f'{label} {seconds:.2f} s' for label, seconds in exact.items())}, plus the decode: at least "
        f"{least:.2f} CPU s a clip. On {cores} cores:",
        "",
        "| ratio | ours, in CPU time | best with exact numbers |",
        "| --- | --- | --- |",
        f"| vs the decode floor | {entry['ours_vs_floor']:.3f}x | {entry['best_vs_floor']:.3f}x |",
        f"| vs TalkVid's order | {entry['ours_vs_talkvid']:.2f}x | {entry['best_vs_talkvid']:.2f}x |",
        "",
    ]
    return entry, lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="720p,1080p")
    args, _ = parser.parse_known_args()  # run_all.py passes every benchmark the same arguments
    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    cores = cpu_count()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "load_average": os.getloadavg(), "batches": {}}
    lines = []
    for batch in args.batches.split(","):
        result["batches"][batch], batch_lines = profile_batch(batch, bench_clips(cache, batch, 1)[0], cores)
        lines += batch_lines
    load = result["load_average"]
    header = (
        f"Where the time goes, and what exact numbers allow (benchmarks/bench_score_profile.py): {result['date']}, "
        f"{result['machine']['cpu_model']}, {cores} usable cores, load average {load[0]:.2f}; every figure from this one run.\n"
    )
    text = header + "\n" + "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score-profile.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "score-profile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
