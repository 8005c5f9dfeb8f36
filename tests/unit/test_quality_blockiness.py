"""The blockiness measure, summed in integers, against its definition written with float means of every step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talkvid_ops.score.quality import BLOCK, blockiness


def blockiness_by_definition(gray: np.ndarray) -> float:
    """Mean step across block boundaries over the mean step elsewhere, per direction, averaged (1 when undefined)."""
    image = gray.astype(np.float64)
    ratios = []
    for steps in (np.abs(np.diff(image, axis=1)), np.abs(np.diff(image, axis=0)).T):
        boundary = np.zeros(steps.shape[1], dtype=bool)
        boundary[BLOCK - 1 :: BLOCK] = True
        with warnings.catch_warnings():  # an image too small for steps inside blocks: the mean of nothing
            warnings.simplefilter("ignore", RuntimeWarning)
            inside = steps[:, ~boundary].mean()
        if boundary.any() and inside > 0:
            ratios.append(steps[:, boundary].mean() / inside)
    return float(np.mean(ratios)) if ratios else 1.0


@pytest.mark.parametrize("shape", [(720, 1280), (1080, 1920), (37, 53), (9, 9), (8, 20), (7, 7), (1, 1), (100, 3)])
def test_blockiness_is_exactly_the_definition(shape):
    rng = np.random.default_rng(sum(shape))
    smooth = np.add.outer(np.arange(shape[0]), np.arange(shape[1])) % 256
    blocky = np.kron(rng.integers(0, 256, (shape[0] // BLOCK + 1, shape[1] // BLOCK + 1)), np.ones((BLOCK, BLOCK)))[: shape[0], : shape[1]]
    images = [rng.integers(0, 256, shape), smooth, blocky, np.full(shape, 7), (np.arange(shape[1]) % 2 * 255)[None].repeat(shape[0], 0)]
    for image in images:
        gray = image.astype(np.uint8)
        assert blockiness(gray) == blockiness_by_definition(gray)


def test_blocky_pictures_score_above_smooth_ones():
    rng = np.random.default_rng(3)
    smooth = np.add.outer(np.arange(64), np.arange(64))  # a step of 1 everywhere
    blocky = smooth + np.kron(rng.integers(0, 128, (8, 8)), np.ones((BLOCK, BLOCK)))  # and jumps at block edges
    assert blockiness(smooth.astype(np.uint8)) == 1.0
    assert blockiness(blocky.astype(np.uint8)) > 10
