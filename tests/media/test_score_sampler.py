"""The frame sampler on synthetic videos whose frames carry their own index: which frames each spec gets, at what
size, orientation and time, decoded once, and that the reader keeps none of the frames it hands out."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pytest

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.sampler import ClipReader, FrameSet, FrameSpec, sample_frames

FPS, FRAMES, WIDTH, HEIGHT = 25, 50, 160, 96
STEP = 5  # grey level per frame index


def write_numbered(path: Path, frames: int, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Lossless H.264 at 25 fps: frame i is grey level 5 * i (mod 255) with a white 16x16 mark in the top-left."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(frames):
            image = np.full((height, width, 3), STEP * i % 255, dtype=np.uint8)
            image[:16, :16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def numbered_video(tmp_path_factory) -> Path:
    """2 s at 25 fps, 160x96."""
    return write_numbered(tmp_path_factory.mktemp("sampler") / "numbered.mp4", FRAMES)


def read(path: Path, start: float, end: float, specs: list[FrameSpec], rotation: int | None = None) -> tuple[ClipReader, dict[FrameSpec, FrameSet]]:
    """Every sample of one pass, collected per spec (fine for these few small frames)."""
    kept: dict[FrameSpec, list] = {spec: [] for spec in specs}
    with ClipReader(path, start, end, specs, rotation) as clip:
        for spec, sample in clip:
            kept[spec].append(sample)
    sets = {
        spec: FrameSet(np.stack([s.image for s in samples]), np.array([s.time for s in samples]), np.array([s.index for s in samples]), clip.info.grids[spec])
        for spec, samples in kept.items()
    }
    return clip, sets


def frame_numbers(frames: np.ndarray) -> list[int]:
    centre = frames[:, frames.shape[1] // 2, frames.shape[2] // 2]
    return [int(round(float(np.mean(v)) / STEP)) for v in centre]


def test_every_spec_gets_its_frames_from_one_pass(numbered_video):
    native = FrameSpec(colour="gray")
    two_fps = FrameSpec(fps=2.5, colour="rgb")
    small = FrameSpec(fps=5.0, colour="gray", scale=0.5)
    square = FrameSpec(fps=5.0, colour="gray", short_side=48, square_crop=True)
    picked = FrameSpec(fps=12.5, colour="gray", select=lambda grid: [grid.samples - 1, 0, 3, 3, 999])
    clip, sets = read(numbered_video, 0.4, 1.4, [native, two_fps, small, square, picked])

    assert frame_numbers(sets[native].frames) == list(range(10, 35))  # [0.4 s, 1.4 s) at 25 fps
    assert sets[native].frames.shape == (25, HEIGHT, WIDTH)
    assert frame_numbers(sets[two_fps].frames) == [10, 20] and sets[two_fps].frames.shape[1:] == (HEIGHT, WIDTH, 3)
    assert frame_numbers(sets[small].frames) == [10, 15, 20, 25, 30]
    assert sets[small].frames.shape[1:] == (HEIGHT // 2, WIDTH // 2)
    assert sets[square].frames.shape[1:] == (48, 48)  # short side 48 -> 80x48, central square
    # select keeps valid, distinct grid positions in order: 0, 3, 11 of the 12 samples at 12.5 fps
    assert list(sets[picked].indices) == [0, 3, 11] and clip.info.grids[picked].samples == 12
    assert frame_numbers(sets[picked].frames) == [10, 16, 32]
    np.testing.assert_allclose(sets[small].times, [0.0, 0.2, 0.4, 0.6, 0.8], atol=0.021)
    assert clip.decoded == 25  # each frame of the range decoded once
    assert clip.converted < 25 + 3 + 5 + 5 + 3  # frames shared by same-format specs are converted once
    assert (clip.info.fps, clip.info.width, clip.info.height) == (25.0, WIDTH, HEIGHT) and clip.info.duration == pytest.approx(1.0)


def test_rotation_and_range_edges(numbered_video):
    spec = FrameSpec(fps=1.0, colour="gray")
    upright = read(numbered_video, 0.0, 2.0, [spec])[1][spec].frames
    turned_clip, turned = read(numbered_video, 0.0, 2.0, [spec], rotation=90)
    assert upright.shape == (2, HEIGHT, WIDTH) and upright[0, 0, 0] == 255
    frames = turned[spec].frames
    assert frames.shape == (2, WIDTH, HEIGHT) and (turned_clip.info.width, turned_clip.info.height) == (HEIGHT, WIDTH)
    # rotation 90 is counter-clockwise (PyAV's display rotation): the top-left mark turned to the bottom left
    assert frames[0, -1, 0] == 255 and frames[0, 0, 0] < 50 and frames[0, 0, -1] < 50

    beyond_clip, beyond = read(numbered_video, 1.52, 9.0, [spec])  # the clip runs past the end of the video
    assert frame_numbers(beyond[spec].frames) == [38] and beyond_clip.info.grids[spec].samples == 7


def test_sample_frames_takes_the_frame_covering_each_time_once(numbered_video):
    frames = sample_frames(numbered_video, 0.4, 1.4, [0.0, 0.01, 0.5, 0.999], rotation=180)
    assert list(frames.indices) == [0, 12, 24] and frame_numbers(frames.frames) == [10, 22, 34]
    assert (frames.width, frames.height) == (WIDTH, HEIGHT) and frames.frames[0, -1, -1, 0] == 255  # turned half way


def test_bad_input_is_a_clear_media_error(numbered_video, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    cases = [
        (broken, 0.0, 1.0, "cannot open", MediaFault.UNREADABLE),
        (tmp_path / "gone.mp4", 0.0, 1.0, "cannot open", MediaFault.MISSING),
        (numbered_video, 1.0, 1.0, "empty clip range", MediaFault.EMPTY_RANGE),
        (numbered_video, 10.0, 11.0, "no frames decoded", MediaFault.EMPTY_RANGE),
    ]
    for path, start, end, message, kind in cases:
        with pytest.raises(MediaError, match=message) as caught:
            read(path, start, end, [FrameSpec()])
        assert caught.value.kind == kind and caught.value.permanent == (kind != MediaFault.MISSING)


def test_the_reader_keeps_none_of_the_frames_it_hands_out(tmp_path):
    """A minute of video streams through with at most the current frame's arrays alive: memory does not grow with
    the clip."""
    long_video = write_numbered(tmp_path / "long.mp4", 60 * FPS, 64, 48)
    specs = [FrameSpec(colour="gray"), FrameSpec(fps=5.0, colour="rgb", square_crop=True)]
    handed_out, most_alive = [], 0
    with ClipReader(long_video, 0.0, 60.0, specs) as clip:
        for _, sample in clip:
            handed_out.append(weakref.ref(sample.image))
            del sample
            most_alive = max(most_alive, sum(ref() is not None for ref in handed_out))
    assert len(handed_out) == 60 * FPS + 60 * 5 and clip.decoded == 60 * FPS
    assert most_alive <= len(specs)  # this frame's conversions, none of the earlier ones
