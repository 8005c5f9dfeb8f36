"""Motion: how much of the picture can be tracked calmly, in both of TalkVid's definitions.

- `motion_valid_ratio_paper` (paper): frames at 25 fps, short side 512, cut into 16-frame windows every 8 frames;
  K = 256 points on a 16x16 grid in the central 256x256 crop are tracked from each window's first frame. A
  trajectory is valid when it is confident (>= 0.5) in every frame, never moves more than 20 px between frames
  and stays in frame; the window's ratio is valid / K and the clip's is the mean over windows. The paper keeps
  0.85 <= ratio <= 0.999 (the upper bound drops frozen shots, the lower bound shaky or untrackable ones).
  "In frame" is the central square (side = the short side) that is decoded, slightly stricter than the full
  frame sideways for landscape video.
- `motion_visibility_code` (released code, `talkvid_ops.score.talkvid_code`): frames read at min(native fps, 30)
  and scaled by 0.25; when more than a second was read, the first and last int(0.2 * fps) are dropped; one, two or
  three segments by the clip's duration (<= 6 s: the whole clip; <= 12 s: the first and last 6 s; longer: also the
  middle 6 s) index the trimmed frames, every int(fps / 2)-th frame; a 100x100 grid is tracked from each segment's
  first frame; the segment's value is the mean visibility over points and frames; the clip's is the minimum over
  segments. The code applies no threshold.

Backends share the definitions and differ in the tracker:
- `lk` (CPU): pyramidal Lucas-Kanade (cv2.calcOpticalFlowPyrLK). Confidence per point and frame is the
  forward-backward check: track forward, then back, and c = 1 / (1 + (e / 1 px)^2) for the round-trip error e,
  so c >= 0.5 exactly when the point returns within 1 px. LK cannot solve on a textureless patch (a white
  wall) where a learned tracker follows the point from context; such a point is taken as staying put, with
  confidence 1, when its 21x21 neighbourhood is unchanged between the frames (mean absolute difference <= 2 grey
  levels), and 0 otherwise. Visibility for the code definition is c >= 0.5.
- `lk-fast` (CPU, opt-in): `lk` on the paper geometry scaled by 1/2 and a 25x25 subset of the code grid, under its
  own metric names (see FastLucasKanadeMotion).
- `cotracker3` (production): CoTracker3 offline from a local checkpoint and a local clone of its repository
  (torch.hub with source="local"), fed the same frames and grid points as queries; its visibility is the
  confidence.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path

import numpy as np

from talkvid_ops.errors import ModelUnavailable
from talkvid_ops.media.sampler import ClipInfo, FrameSpec, Grid, Sample
from talkvid_ops.score.base import Accumulator, Metrics, Scorer
from talkvid_ops.score.talkvid_code import CODE_MAX_FPS, code_segment_frames, code_trim

PAPER_FPS, PAPER_SHORT_SIDE, PAPER_CROP, PAPER_GRID = 25.0, 512, 256, 16
PAPER_WINDOW, PAPER_STRIDE, PAPER_MAX_STEP = 16, 8, 20.0
CONFIDENT = 0.5
CODE_SCALE, CODE_GRID = 0.25, 100
FB_TOLERANCE = 1.0  # px: the round-trip error at which LK confidence is 0.5
LK_WINDOW, LK_LEVELS = (21, 21), 3
LK_PARAMS = dict(winSize=LK_WINDOW, maxLevel=LK_LEVELS, criteria=(3, 20, 0.03))  # 3: TERM_CRITERIA_EPS | TERM_CRITERIA_COUNT
STATIC_PATCH_DIFF = 2.0  # grey levels: a textureless patch this close to its previous look has not moved


def paper_valid_ratio(tracks: np.ndarray, confidence: np.ndarray, width: int, height: int, max_step: float = PAPER_MAX_STEP) -> float:
    """Share of valid trajectories in one window: tracks (T, K, 2) in px, confidence (T, K)."""
    confident = (confidence >= CONFIDENT).all(axis=0)
    steps = np.linalg.norm(np.diff(tracks, axis=0), axis=2)
    calm = (steps <= max_step).all(axis=0) if len(steps) else np.ones(tracks.shape[1], dtype=bool)
    x, y = tracks[..., 0], tracks[..., 1]
    inside = ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).all(axis=0)
    return float((confident & calm & inside).mean())


def code_segments(grid: Grid) -> list[list[int]]:
    """The released code's segments as positions on the clip's grid at the read rate (trim offset added)."""
    first, stop = code_trim(grid.samples, grid.fps)
    return [[first + i for i in segment] for segment in code_segment_frames(grid.duration, grid.fps, stop - first)]


def code_samples(grid: Grid) -> list[int]:
    """Which frames the code definition uses (the frame sampler converts only these)."""
    return sorted({i for segment in code_segments(grid) for i in segment})


def paper_points(side: int, crop: float = PAPER_CROP) -> np.ndarray:
    """The paper's 16x16 grid in the central `crop` square of a `side` x `side` frame."""
    offset = (side - crop) / 2
    return grid_points(side, side, PAPER_GRID, (offset, offset, offset + crop, offset + crop))


def grid_points(width: int, height: int, n: int, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """n x n points at cell centres of `box` (x0, y0, x1, y1; default the whole frame), as (n*n, 2) float32."""
    x0, y0, x1, y1 = box or (0.0, 0.0, float(width), float(height))
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


class MotionScorer(Scorer):
    """Both motion definitions on top of a backend's `track(frames, points) -> (tracks, confidence)`."""

    name = "motion"
    version = "2"
    colour = "gray"
    paper_metric, code_metric = "motion_valid_ratio_paper", "motion_visibility_code"

    @property
    def needs(self) -> dict[str, FrameSpec]:
        return {
            "paper": FrameSpec(fps=PAPER_FPS, colour=self.colour, short_side=PAPER_SHORT_SIDE, square_crop=True),
            "code": FrameSpec(max_fps=CODE_MAX_FPS, colour=self.colour, scale=CODE_SCALE, select=code_samples),
        }

    def track(self, frames: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Track `points` (K, 2) from frames[0] through frames: tracks (T, K, 2), confidence (T, K) in [0, 1]."""
        raise NotImplementedError

    def begin(self, clip: ClipInfo) -> Accumulator:
        return MotionClip(self, self.paper_windows(clip.grids[self.needs["paper"]].samples), code_segments(clip.grids[self.needs["code"]]))

    def paper_windows(self, planned: int) -> PaperWindows:
        """How this backend tracks the paper windows of a clip with `planned` samples at 25 fps."""
        return TrackedWindows(self)

    def paper_ratio(self, window: list[np.ndarray]) -> float:
        """The paper's valid-trajectory share of one window of square frames."""
        height, width = window[0].shape[:2]
        tracks, confidence = self.track(np.stack(window), paper_points(width))
        return paper_valid_ratio(tracks, confidence, width, height)

    def code_visibility(self, segment: list[np.ndarray]) -> float:
        """The released code's mean visibility over the points and frames of one segment."""
        height, width = segment[0].shape[:2]
        _, confidence = self.track(np.stack(segment), self.code_points(width, height))
        return float((confidence >= CONFIDENT).mean())

    def code_points(self, width: int, height: int) -> np.ndarray:
        """The released code's 100x100 grid."""
        return grid_points(width, height, CODE_GRID)


class PaperWindows:
    """The paper definition's windows over a clip's 25 fps frames: windows start every 8 frames and are scored
    once their 16th frame arrives; a clip shorter than a window is one window of all its frames (two at least)."""

    def add(self, image: np.ndarray) -> list[float]:
        """The next frame; the ratios of the windows it completes."""
        raise NotImplementedError

    def finish(self) -> list[float]:
        """After the last frame: the ratio of a clip shorter than one window (none otherwise)."""
        raise NotImplementedError


class TrackedWindows(PaperWindows):
    """Keeps the last 16 frames and has the backend track each window on its own (`MotionScorer.paper_ratio`)."""

    def __init__(self, scorer: MotionScorer):
        self.scorer = scorer
        self.frames: deque[np.ndarray] = deque(maxlen=PAPER_WINDOW)
        self.count = 0

    def add(self, image: np.ndarray) -> list[float]:
        self.frames.append(image)
        self.count += 1
        if self.count >= PAPER_WINDOW and (self.count - PAPER_WINDOW) % PAPER_STRIDE == 0:
            return [self.scorer.paper_ratio(list(self.frames))]
        return []

    def finish(self) -> list[float]:
        return [self.scorer.paper_ratio(list(self.frames))] if 2 <= self.count < PAPER_WINDOW else []


class MotionClip(Accumulator):
    """Both definitions, window by window: the paper windows (see PaperWindows) and the open code segments' frames.
    Code: a segment is tracked once its last frame arrives (segments may share frames); a segment of fewer than two
    frames does not count.
    """

    def __init__(self, scorer: MotionScorer, paper: PaperWindows, code_segments: list[list[int]]):
        self.scorer, self.paper = scorer, paper
        self.paper_count = self.code_count = 0
        self.segments = [segment for segment in code_segments if len(segment) >= 2]
        self.code: list[list[np.ndarray]] = [[] for _ in self.segments]
        self.ratios: list[float] = []
        self.visibilities: list[float] = []

    def add(self, name: str, sample: Sample) -> None:
        if name == "paper":
            self.paper_count += 1
            self.ratios.extend(self.paper.add(sample.image))
            return
        self.code_count += 1
        for segment, frames in zip(self.segments, self.code, strict=True):
            if sample.index in segment:
                frames.append(sample.image)
                if sample.index == segment[-1]:
                    self._close_segment(frames)

    def _close_segment(self, frames: list[np.ndarray]) -> None:
        if len(frames) >= 2:
            self.visibilities.append(self.scorer.code_visibility(frames))
        frames.clear()

    def result(self) -> Metrics:
        self.ratios.extend(self.paper.finish())
        for frames in self.code:  # a segment whose last frame the video did not deliver
            self._close_segment(frames)
        if not self.ratios or not self.visibilities:
            raise ValueError(f"clip too short for motion: {self.paper_count} frames at 25 fps, {self.code_count} for the code segments")
        values = {self.scorer.paper_metric: float(np.mean(self.ratios)), self.scorer.code_metric: min(self.visibilities)}
        details = {
            "paper_windows": len(self.ratios),
            "paper_window_ratios": [round(r, 4) for r in self.ratios],
            "code_segment_visibility": [round(v, 4) for v in self.visibilities],
            "code_segment_frames": [len(segment) for segment in self.segments],
        }
        return Metrics(values, details)


def lk_step(previous: np.ndarray, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (K, 2) in `previous` -> where LK puts them in `image` (K, 2) and their confidence (K,): forward,
    then back for the round-trip error; a point LK loses on an unchanged patch stays put with confidence 1.

    Each point is tracked on its own, so several windows' points go through in one call (the images' pyramids
    are built once per call, not once per window) with the same result per point."""
    import cv2

    current = points.reshape(-1, 1, 2)
    forward, ok_forward, _ = cv2.calcOpticalFlowPyrLK(previous, image, current, None, **LK_PARAMS)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(image, previous, forward, None, **LK_PARAMS)
    error = np.linalg.norm((back - current).reshape(-1, 2), axis=1)
    ok = (ok_forward.ravel() == 1) & (ok_back.ravel() == 1)
    confidence = np.where(ok, 1.0 / (1.0 + (error / FB_TOLERANCE) ** 2), 0.0).astype(np.float32)
    forward = forward.reshape(-1, 2)
    if not ok.all():
        static = ~ok & _unchanged(previous, image, points.reshape(-1, 2))
        forward[static] = points.reshape(-1, 2)[static]
        confidence[static] = 1.0
    return forward, confidence


def _unchanged(previous: np.ndarray, image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether the LK-window neighbourhood of each point looks the same in both frames."""
    import cv2

    diff = cv2.blur(cv2.absdiff(previous, image).astype(np.float32), LK_WINDOW)
    h, w = diff.shape
    x = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    return diff[y, x] <= STATIC_PATCH_DIFF


class LucasKanadeMotion(MotionScorer):
    backend = "lk"

    def track(self, frames: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tracks = np.zeros((len(frames), len(points), 2), dtype=np.float32)
        confidence = np.zeros((len(frames), len(points)), dtype=np.float32)
        tracks[0], confidence[0] = points, 1.0
        for t in range(1, len(frames)):
            tracks[t], confidence[t] = lk_step(frames[t - 1], frames[t], tracks[t - 1])
        return tracks, confidence

    def paper_windows(self, planned: int) -> PaperWindows:
        return LKPaperWindows(planned)


class FastLucasKanadeMotion(LucasKanadeMotion):
    """`lk-fast` (CPU, a separately named approximation of `lk`, calibrated against its decisions): the same
    trackers and windows, on half the paper's frame size (short side 256, grid in the central 128 px, steps up to
    10 px: the paper's geometry scaled by 1/2) and on every 4th row and column of the code definition's grid
    (25x25 of its 100x100 points). Its metrics carry their own names, since they approximate the definitions."""

    backend = "lk-fast"
    paper_metric, code_metric = "motion_valid_ratio_fast", "motion_visibility_fast"
    SCALE, CODE_STRIDE = 0.5, 4

    @property
    def needs(self) -> dict[str, FrameSpec]:
        needs = super().needs
        return {**needs, "paper": dataclasses.replace(needs["paper"], short_side=round(PAPER_SHORT_SIDE * self.SCALE))}

    def paper_windows(self, planned: int) -> PaperWindows:
        return LKPaperWindows(planned, self.SCALE)

    def code_points(self, width: int, height: int) -> np.ndarray:
        start = self.CODE_STRIDE // 2
        return super().code_points(width, height).reshape(CODE_GRID, CODE_GRID, 2)[start :: self.CODE_STRIDE, start :: self.CODE_STRIDE].reshape(-1, 2)


class _Window:
    """One paper window being tracked: its points' positions and confidences so far."""

    def __init__(self, points: np.ndarray):
        self.tracks = np.zeros((PAPER_WINDOW, len(points), 2), dtype=np.float32)
        self.confidence = np.zeros((PAPER_WINDOW, len(points)), dtype=np.float32)
        self.tracks[0], self.confidence[0] = points, 1.0
        self.frames = 1


class LKPaperWindows(PaperWindows):
    """Every paper window tracked frame by frame, together: each new frame moves the points of the (at most two)
    windows it belongs to in one forward and one backward LK call, instead of two calls per window. A window
    starts only where it can end within the `planned` samples (the first always starts, for short clips)."""

    def __init__(self, planned: int, scale: float = 1.0):
        self.planned, self.crop, self.max_step = planned, PAPER_CROP * scale, PAPER_MAX_STEP * scale
        self.windows: list[_Window] = []
        self.previous: np.ndarray | None = None
        self.count = 0

    def add(self, image: np.ndarray) -> list[float]:
        if self.windows:
            moved, confidence = lk_step(self.previous, image, np.concatenate([w.tracks[w.frames - 1] for w in self.windows]))
            for i, window in enumerate(self.windows):
                part = slice(i * PAPER_GRID**2, (i + 1) * PAPER_GRID**2)
                window.tracks[window.frames], window.confidence[window.frames] = moved[part], confidence[part]
                window.frames += 1
        if self.count % PAPER_STRIDE == 0 and (self.count == 0 or self.count + PAPER_WINDOW <= self.planned):
            self.windows.append(_Window(paper_points(image.shape[1], self.crop)))
        self.previous, self.count = image, self.count + 1
        ratios = []
        while self.windows and self.windows[0].frames == PAPER_WINDOW:
            ratios.append(self._ratio(self.windows.pop(0)))
        return ratios

    def _ratio(self, window: _Window) -> float:
        height, width = self.previous.shape[:2]
        return paper_valid_ratio(window.tracks[: window.frames], window.confidence[: window.frames], width, height, self.max_step)

    def finish(self) -> list[float]:
        return [self._ratio(self.windows[0])] if 2 <= self.count < PAPER_WINDOW else []


class CoTracker3Motion(MotionScorer):
    backend = "cotracker3"
    colour = "rgb"

    def _paths(self) -> tuple[Path, Path]:
        if not self.config.model_dir:
            raise ModelUnavailable("the cotracker3 motion backend needs score.model_dir (with the CoTracker3 checkpoint and repository)")
        root = Path(self.config.model_dir)
        return root / self.config.cotracker_hub_dir, root / self.config.cotracker_checkpoint

    def model_files(self) -> list[Path]:
        hub_dir, checkpoint = self._paths()
        return [checkpoint, hub_dir / "hubconf.py"]

    def _load(self) -> None:
        hub_dir, checkpoint = self._paths()
        if not checkpoint.exists():
            raise ModelUnavailable(f"CoTracker3 checkpoint not found: {checkpoint} (put scaled_offline.pth from facebook/cotracker3 there)")
        if not (hub_dir / "hubconf.py").exists():
            raise ModelUnavailable(f"CoTracker repository not found: {hub_dir} has no hubconf.py (clone facebookresearch/co-tracker there)")
        import torch

        predictor = torch.hub.load(str(hub_dir), "cotracker3_offline", source="local", pretrained=False, trust_repo=True)
        predictor.model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        self.predictor = predictor.to(self.config.device).eval()

    def track(self, frames: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None].float().to(self.config.device)
        queries = torch.zeros((1, len(points), 3), dtype=torch.float32)
        queries[0, :, 1:] = torch.from_numpy(points)
        with torch.no_grad():
            tracks, visibility = self.predictor(video, queries=queries.to(self.config.device))
        return tracks[0].float().cpu().numpy(), visibility[0].float().cpu().numpy()
