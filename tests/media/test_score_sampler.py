"""The frame sampler on a synthetic video whose frames carry their own index: which frames each spec gets, at what
size, orientation and time, decoded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.sampler import FrameSpec, sample_clip

FPS, FRAMES, WIDTH, HEIGHT = 25, 50, 160, 96
STEP = 5  # grey level per frame index


@pytest.fixture(scope="module")
def numbered_video(tmp_path_factory) -> Path:
    """2 s at 25 fps, lossless H.264: frame i is grey level 5 * i with a white 16x16 mark in the top-left corner."""
    import av

    path = tmp_path_factory.mktemp("sampler") / "numbered.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        for i in range(FRAMES):
            image = np.full((HEIGHT, WIDTH, 3), STEP * i, dtype=np.uint8)
            image[:16, :16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_numbers(frames: np.ndarray) -> list[int]:
    centre = frames[:, frames.shape[1] // 2, frames.shape[2] // 2]
    return [int(round(float(np.mean(v)) / STEP)) for v in centre]


def test_every_spec_gets_its_frames_from_one_pass(numbered_video):
    native = FrameSpec(colour="gray")
    two_fps = FrameSpec(fps=2.5, colour="rgb")
    small = FrameSpec(fps=5.0, colour="gray", scale=0.5)
    square = FrameSpec(fps=5.0, colour="gray", short_side=48, square_crop=True)
    picked = FrameSpec(fps=12.5, colour="gray", select=lambda n: [n - 1, 0, 3, 3, 999])
    clip = sample_clip(numbered_video, 0.4, 1.4, [native, two_fps, small, square, picked])

    assert frame_numbers(clip[native].frames) == list(range(10, 35))  # [0.4 s, 1.4 s) at 25 fps
    assert clip[native].frames.shape == (25, HEIGHT, WIDTH)
    assert frame_numbers(clip[two_fps].frames) == [10, 20] and clip[two_fps].frames.shape[1:] == (HEIGHT, WIDTH, 3)
    assert frame_numbers(clip[small].frames) == [10, 15, 20, 25, 30]
    assert clip[small].frames.shape[1:] == (HEIGHT // 2, WIDTH // 2)
    assert clip[square].frames.shape[1:] == (48, 48)  # short side 48 -> 80x48, central square
    # select keeps valid, distinct grid positions in order: 0, 3, 11 of the 12 samples at 12.5 fps
    assert list(clip[picked].indices) == [0, 3, 11] and clip[picked].samples_on_grid == 12
    assert frame_numbers(clip[picked].frames) == [10, 16, 32]
    np.testing.assert_allclose(clip[small].times, [0.0, 0.2, 0.4, 0.6, 0.8], atol=0.021)
    assert clip.decoded == 25  # each frame of the range decoded once
    assert clip.converted < 25 + 3 + 5 + 5 + 3  # frames shared by same-format specs are converted once


def test_rotation_and_range_edges(numbered_video):
    spec = FrameSpec(fps=1.0, colour="gray")
    upright = sample_clip(numbered_video, 0.0, 2.0, [spec])[spec].frames
    turned = sample_clip(numbered_video, 0.0, 2.0, [spec], rotation=90)
    assert upright.shape == (2, HEIGHT, WIDTH) and upright[0, 0, 0] == 255
    frames = turned[spec].frames
    assert frames.shape == (2, WIDTH, HEIGHT) and (turned.width, turned.height) == (HEIGHT, WIDTH)
    assert frames[0, 0, -1] == 255 and frames[0, 0, 0] < 50  # the top-left mark turned clockwise to the top right

    beyond = sample_clip(numbered_video, 1.52, 9.0, [spec])  # the clip runs past the end of the video
    assert frame_numbers(beyond[spec].frames) == [38] and beyond[spec].samples_on_grid == 7


def test_bad_input_is_a_clear_media_error(numbered_video, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError, match="cannot open"):
        sample_clip(broken, 0.0, 1.0, [FrameSpec()])
    with pytest.raises(MediaError, match="empty clip range"):
        sample_clip(numbered_video, 1.0, 1.0, [FrameSpec()])
    with pytest.raises(MediaError, match="no frames decoded"):
        sample_clip(numbered_video, 10.0, 11.0, [FrameSpec()])
