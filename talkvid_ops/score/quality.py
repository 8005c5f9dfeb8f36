"""Visual quality: a classical CPU backend that needs no download, and DOVER (ONNX) for production.

Classical backend (`classical`), on luma frames sampled at `quality_sample_fps`:

| metric | meaning |
| --- | --- |
| quality_sharpness | variance of the Laplacian at an analysis size (short side <= 720), 100 * (1 - exp(-var / 300)) |
| quality_exposure | 100 * (1 - ((mean luma - 118) / 118)^2) * (1 - clipped share), 0 when the mean is at 0 or 236+ |
| quality_clipping | share of pixels at luma <= 2 or >= 253 |
| quality_noise | noise sigma in grey levels (Immerkaer's Laplacian-difference estimate) |
| quality_blockiness | mean luma step across 8-pixel block edges / elsewhere, at the coded size (1: none) |
| quality_brisque | OpenCV contrib BRISQUE with Debian's LIVE model (0 best, about 100 worst) |
| quality_technical | the combination below, 0-100, higher is better |

quality_technical is the weighted geometric mean of five 0-100 sub-scores: sharpness (weight 0.3),
exposure (0.25), BRISQUE as 100 - brisque (0.2), noise as 100 * (1 - (sigma - 2) / 10) (0.15) and blockiness as
100 * (1 - (ratio - 1) / 0.5) (0.1), each clamped to [1, 100]. A geometric mean lets one severe defect (a dark,
blurred or blocky clip) pull the score down even when the other aspects look fine, which a weighted sum hides.
It is not on DOVER's scale: the shipped profiles hold a separately calibrated threshold for it.

DOVER backend (`dover`): the ONNX export of DOVER (inputs `aes_view` (1, 3, 32, 224, 224) and `tech_view`
(clips, 3, 32, 224, 224), outputs the aesthetic then the technical score), fed with DOVER's own sampling: the
technical view is 3 clips of 32 frames (every 2nd frame, one random offset per third of the clip; the clip count
is read from the model, DOVER's export script fixes 4) cut into a 7x7 grid of 32x32 native-resolution fragments,
one random position per cell and clip; the aesthetic view is 32 frames spread over the clip, resized to 224x224.
Pixels are normalised with ImageNet's mean and std on the 0-255 scale. Random offsets come from a seeded
generator, so scores are reproducible. Each frame is reduced to its fragments (and its 224 px view) as it is
decoded, so a 4K clip never holds 96 full frames. Raw outputs are stored (`dover_technical_raw`, `dover_aesthetic_raw`) with
two normalisations, recorded in the scoring details: DOVER's fused 4-parameter sigmoid scaled to 0-10
(`dover_overall`, the paper's 7.0 applies) and the technical branch alone through the same sigmoid constants,
0-10 (`dover_technical`, the released code's 5 applies).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from talkvid_ops.errors import ModelUnavailable
from talkvid_ops.media.runtime import onnx_providers
from talkvid_ops.media.sampler import ClipInfo, FrameSpec, Grid, Sample
from talkvid_ops.score.base import Accumulator, Metrics, Scorer
from talkvid_ops.score.talkvid_code import DOVER_PREDICTION_SETS, dover_released_score

ANALYSIS_SHORT_SIDE = 720
SHARPNESS_SCALE = 300.0
MID_GREY = 118.0
CLIP_LOW, CLIP_HIGH = 2, 253
BLOCK = 8
BRISQUE_MODEL = Path("/usr/share/opencv4/quality/brisque_model_live.yml")
BRISQUE_RANGE = Path("/usr/share/opencv4/quality/brisque_range_live.yml")
TECHNICAL_WEIGHTS = {"sharpness": 0.3, "exposure": 0.25, "brisque": 0.2, "noise": 0.15, "blockiness": 0.1}
NOISE_FREE_SIGMA, NOISE_RANGE = 2.0, 10.0
BLOCKINESS_RANGE = 0.5


def _analysis_image(gray: np.ndarray) -> np.ndarray:
    import cv2

    h, w = gray.shape
    factor = ANALYSIS_SHORT_SIDE / min(h, w)
    if factor >= 1:
        return gray
    return cv2.resize(gray, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)


def sharpness(gray: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer (1996): the image convolved with a Laplacian-difference mask, scaled to a Gaussian sigma."""
    import cv2

    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = cv2.filter2D(gray.astype(np.float64), -1, mask)[1:-1, 1:-1]
    h, w = gray.shape
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2)))


def blockiness(gray: np.ndarray) -> float:
    """Mean absolute luma step across 8-pixel block boundaries over the mean step elsewhere (1: no blocking).

    Steps are summed as integers per boundary line (exact, so the same value as float means of the steps, at a
    fifth of the time)."""
    image = gray.astype(np.int16)
    ratios = []
    for axis in (1, 0):  # across columns, then across rows
        steps = np.abs(np.diff(image, axis=axis))
        per_line = steps.sum(axis=1 - axis, dtype=np.int64)  # the steps between line i and i + 1, summed along it
        length = steps.shape[1 - axis]
        boundary = per_line[BLOCK - 1 :: BLOCK]
        inside_lines = len(per_line) - len(boundary)
        if len(boundary) and inside_lines:
            inside = int(per_line.sum() - boundary.sum()) / (inside_lines * length)
            if inside > 0:
                ratios.append(int(boundary.sum()) / (len(boundary) * length) / inside)
    return float(np.mean(ratios)) if ratios else 1.0


def exposure(gray: np.ndarray) -> tuple[float, float]:
    """(exposure score 0-100, clipped share 0-1)."""
    clipped = float(((gray <= CLIP_LOW) | (gray >= CLIP_HIGH)).mean())
    offset = (float(gray.mean()) - MID_GREY) / MID_GREY
    return 100.0 * max(0.0, 1.0 - offset * offset) * (1.0 - clipped), clipped


def technical_score(sharpness_score: float, exposure_score: float, brisque: float, noise: float, block_ratio: float) -> float:
    """The documented 0-100 combination (weighted geometric mean of clamped sub-scores)."""
    parts = {
        "sharpness": sharpness_score,
        "exposure": exposure_score,
        "brisque": 100.0 - brisque,
        "noise": 100.0 * (1.0 - (noise - NOISE_FREE_SIGMA) / NOISE_RANGE),
        "blockiness": 100.0 * (1.0 - (block_ratio - 1.0) / BLOCKINESS_RANGE),
    }
    log_sum = sum(weight * math.log(min(100.0, max(1.0, parts[name]))) for name, weight in TECHNICAL_WEIGHTS.items())
    return math.exp(log_sum / sum(TECHNICAL_WEIGHTS.values()))


class ClassicalQuality(Scorer):
    name = "quality"
    backend = "classical"
    version = "1"

    @property
    def needs(self) -> dict[str, FrameSpec]:
        return {"luma": FrameSpec(fps=self.config.quality_sample_fps, colour="gray")}

    def _load(self) -> None:
        import cv2

        for path in (BRISQUE_MODEL, BRISQUE_RANGE):
            if not path.exists():
                raise ModelUnavailable(f"BRISQUE model file {path} missing: install Debian's opencv-data package")
        self.brisque = cv2.quality.QualityBRISQUE_create(str(BRISQUE_MODEL), str(BRISQUE_RANGE))

    def begin(self, clip: ClipInfo) -> Accumulator:
        return ClassicalQualityClip(self, clip.grids[self.needs["luma"]])

    def frame_measures(self, gray: np.ndarray) -> tuple[float, ...]:
        """(Laplacian variance, exposure score, clipped share, noise sigma, blockiness, BRISQUE) of one luma frame."""
        small = _analysis_image(gray)
        exposure_score, clipped = exposure(small)
        return sharpness(small), exposure_score, clipped, noise_sigma(small), blockiness(gray), float(self.brisque.compute(small)[0])


class ClassicalQualityClip(Accumulator):
    """Keeps the six measures of each sampled frame; the clip's are their means."""

    def __init__(self, scorer: ClassicalQuality, grid: Grid):
        self.scorer, self.grid = scorer, grid
        self.rows: list[tuple[float, ...]] = []

    def add(self, name: str, sample: Sample) -> None:
        self.rows.append(self.scorer.frame_measures(sample.image))

    def result(self) -> Metrics:
        if not self.rows:
            raise ValueError("no frames sampled for quality")
        lap_var, exposure_score, clipped, noise, block_ratio, brisque = (float(v) for v in np.mean(self.rows, axis=0))
        sharpness_score = 100.0 * (1.0 - math.exp(-lap_var / SHARPNESS_SCALE))
        values = {
            "quality_sharpness": sharpness_score,
            "quality_exposure": exposure_score,
            "quality_clipping": clipped,
            "quality_noise": noise,
            "quality_blockiness": block_ratio,
            "quality_brisque": brisque,
            "quality_technical": technical_score(sharpness_score, exposure_score, brisque, noise, block_ratio),
        }
        return Metrics(values, {"frames": len(self.rows), "sample_fps": self.grid.fps, "laplacian_variance": lap_var, "weights": TECHNICAL_WEIGHTS})


# DOVER's inference settings (its dover.yml, val-l1080p) and pixel normalisation.
DOVER_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
DOVER_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
DOVER_CLIP_LEN, DOVER_FRAME_INTERVAL, DOVER_TECH_CLIPS = 32, 2, 3
DOVER_FRAGMENTS, DOVER_FRAGMENT_SIZE = 7, 32
DOVER_AESTHETIC_SIZE = 224
# DOVER's score-level fusion (onnx_inference.py of DOVER): a 4-parameter sigmoid over standardised outputs.
DOVER_FUSION = {
    "aesthetic_mean": 0.1107,
    "aesthetic_std": 0.07355,
    "aesthetic_weight": 0.6104,
    "technical_offset": 0.08285,
    "technical_std": 0.03774,
    "technical_weight": 0.3896,
    "scale": 10.0,
}


def dover_frame_indices(total: int, frames_per_part: int, parts: int, interval: int, rng: np.random.Generator) -> np.ndarray:
    """DOVER's temporal sampling: `parts` equal parts, in each `frames_per_part` frames `interval` apart from a
    random start; indices wrap around short clips."""
    part = total // parts
    starts = part * np.arange(parts)
    span = frames_per_part * interval
    offsets = rng.integers(0, part - span, size=parts) if part > span else np.zeros(parts, dtype=int)
    indices = np.arange(frames_per_part)[None, :] * interval + offsets[:, None] + starts[:, None]
    return np.mod(indices.ravel(), max(1, total))


def fragment_offsets(clips: int, seed: int) -> np.ndarray:
    """DOVER draws one random position per grid cell and 32-frame clip; here as fractions of the free range
    (clips, 7, 7, 2), so they apply to any frame size."""
    return np.random.default_rng(seed).random((clips, DOVER_FRAGMENTS, DOVER_FRAGMENTS, 2))


def technical_fragments(frame: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """One native (H, W, 3) frame -> (clips, 224, 224, 3): per clip a 7x7 grid of 32x32 patches, each at its
    cell's offset; frames under 224 px are upsampled first, as DOVER does."""
    import cv2

    size = DOVER_FRAGMENTS * DOVER_FRAGMENT_SIZE
    h, w = frame.shape[:2]
    ratio = min(h / size, w / size)
    if ratio < 1:
        h, w = int(h / ratio + 0.5), int(w / ratio + 0.5)
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    cell_h, cell_w = h // DOVER_FRAGMENTS, w // DOVER_FRAGMENTS
    free_h, free_w = max(0, cell_h - DOVER_FRAGMENT_SIZE), max(0, cell_w - DOVER_FRAGMENT_SIZE)
    out = np.zeros((len(offsets), size, size, 3), dtype=frame.dtype)
    p = DOVER_FRAGMENT_SIZE
    for clip, grid in enumerate(offsets):
        for i in range(DOVER_FRAGMENTS):
            for j in range(DOVER_FRAGMENTS):
                top = min(cell_h * i, h - p) + int(grid[i, j, 0] * free_h)
                left = min(cell_w * j, w - p) + int(grid[i, j, 1] * free_w)
                out[clip, i * p : (i + 1) * p, j * p : (j + 1) * p] = frame[top : top + p, left : left + p]
    return out


def aesthetic_view_frame(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (DOVER_AESTHETIC_SIZE, DOVER_AESTHETIC_SIZE), interpolation=cv2.INTER_AREA)


def _normalised_view(video: np.ndarray, clips: int) -> np.ndarray:
    """(clips * T, H, W, 3) uint8 -> (clips, 3, T, H, W) float32 with DOVER's mean and std."""
    x = (video.astype(np.float32) - DOVER_MEAN) / DOVER_STD
    n, h, w, c = x.shape
    return np.ascontiguousarray(x.reshape(clips, n // clips, h, w, c).transpose(0, 4, 1, 2, 3))


def dover_normalise(aesthetic_raw: float, technical_raw: float) -> dict[str, float]:
    """The two 0-10 scores from DOVER's raw outputs (constants in DOVER_FUSION)."""
    f = DOVER_FUSION
    technical_z = (technical_raw + f["technical_offset"]) / f["technical_std"]
    fused = (aesthetic_raw - f["aesthetic_mean"]) / f["aesthetic_std"] * f["aesthetic_weight"] + technical_z * f["technical_weight"]
    return {
        "dover_overall": f["scale"] / (1.0 + math.exp(-fused)),
        "dover_technical": f["scale"] / (1.0 + math.exp(-technical_z)),
    }


class DoverOnnxQuality(Scorer):
    name = "quality"
    backend = "dover"
    version = "2"

    def model_path(self) -> Path:
        if not self.config.model_dir:
            raise ModelUnavailable(f"the dover quality backend needs score.model_dir holding {self.config.dover_model}")
        return Path(self.config.model_dir) / self.config.dover_model

    def model_files(self) -> list[Path]:
        return [self.model_path()]

    def _load(self) -> None:
        path = self.model_path()
        if not path.exists():
            raise ModelUnavailable(f"DOVER ONNX model not found: {path} (export it with DOVER's convert_to_onnx.py)")
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=onnx_providers(self.config.device))
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if set(inputs) != {"aes_view", "tech_view"} or len(self.session.get_outputs()) != 2:
            raise ModelUnavailable(f"{path} is not a DOVER export: inputs {sorted(inputs)}, expected aes_view and tech_view with two outputs")
        clips = inputs["tech_view"][0]
        self.tech_clips = clips if isinstance(clips, int) and clips > 0 else DOVER_TECH_CLIPS
        self.offsets = fragment_offsets(self.tech_clips, self.config.dover_seed + 1)

    def sample_indices(self, total: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid positions of the technical and the aesthetic view's frames for a clip of `total` frames (seeded)."""
        rng = np.random.default_rng(self.config.dover_seed)
        technical = dover_frame_indices(total, DOVER_CLIP_LEN, self.tech_clips, DOVER_FRAME_INTERVAL, rng)
        aesthetic = dover_frame_indices(total, 1, DOVER_CLIP_LEN, DOVER_FRAME_INTERVAL, rng)
        return technical, aesthetic

    def _technical_indices(self, grid: Grid) -> np.ndarray:
        return self.sample_indices(grid.samples)[0]

    def _aesthetic_indices(self, grid: Grid) -> np.ndarray:
        return self.sample_indices(grid.samples)[1]

    @property
    def needs(self) -> dict[str, FrameSpec]:
        self.load()  # the technical clip count comes from the model's input shape
        return {
            "technical": FrameSpec(colour="rgb", select=self._technical_indices),
            "aesthetic": FrameSpec(colour="rgb", select=self._aesthetic_indices),
        }

    def begin(self, clip: ClipInfo) -> Accumulator:
        return DoverClip(self, clip.grids[self.needs["technical"]].samples)

    def run_model(self, aes_frames: np.ndarray, tech_frames: np.ndarray) -> Metrics:
        """DOVER on its two views: (32, 224, 224, 3) aesthetic frames, (clips * 32, 224, 224, 3) fragment frames."""
        aes_view, tech_view = _normalised_view(aes_frames, 1), _normalised_view(tech_frames, self.tech_clips)
        aesthetic_out, technical_out = self.session.run(None, {"aes_view": aes_view, "tech_view": tech_view})
        raw = {"dover_aesthetic_raw": float(np.mean(aesthetic_out)), "dover_technical_raw": float(np.mean(technical_out))}
        values = {**raw, **dover_normalise(raw["dover_aesthetic_raw"], raw["dover_technical_raw"])}
        # TalkVid's released `dover_scores`: its code feeds the first output (aesthetic) into the technical sets
        values["dover_released"] = dover_released_score(raw["dover_aesthetic_raw"])
        details = {
            "normalisation": {
                "dover_overall": "scale * sigmoid((aes - aesthetic_mean) / aesthetic_std * aesthetic_weight + (tech + technical_offset) / technical_std * technical_weight)",
                "dover_technical": "scale * sigmoid((tech + technical_offset) / technical_std)",
                "dover_released": "TalkVid released code: mean over DOVER's five validation sets of the z-score of the first output (aes) among the set's technical predictions, rounded to 2 decimals",
                "constants": DOVER_FUSION,
                "released_prediction_sets": sorted(DOVER_PREDICTION_SETS),
            },
            "technical_clips": self.tech_clips,
            "seed": self.config.dover_seed,
        }
        return Metrics(values, details)


class DoverClip(Accumulator):
    """Keeps each sampled frame reduced as it arrives (technical: its fragments for every clip; aesthetic: 224 x
    224), so a 4K clip never holds DOVER's 128 full frames; the views are assembled at the end."""

    def __init__(self, scorer: DoverOnnxQuality, technical_samples: int):
        self.scorer, self.technical_samples = scorer, technical_samples
        self.kept: dict[str, tuple[list[int], list[np.ndarray]]] = {"technical": ([], []), "aesthetic": ([], [])}

    def add(self, name: str, sample: Sample) -> None:
        indices, views = self.kept[name]
        indices.append(sample.index)
        views.append(technical_fragments(sample.image, self.scorer.offsets) if name == "technical" else aesthetic_view_frame(sample.image))

    def result(self) -> Metrics:
        (technical_kept, fragments), (aesthetic_kept, aesthetic) = self.kept["technical"], self.kept["aesthetic"]
        if not fragments or not aesthetic:
            raise ValueError("no frames sampled for DOVER")
        clips = self.scorer.tech_clips
        technical_idx, aesthetic_idx = self.scorer.sample_indices(self.technical_samples)
        # technical: clip c takes its own fragments of each of its 32 frames
        positions = _positions(np.array(technical_kept), technical_idx).reshape(clips, DOVER_CLIP_LEN)
        tech_frames = np.concatenate([np.stack([fragments[p][c] for p in positions[c]]) for c in range(clips)])
        aes_frames = np.stack([aesthetic[p] for p in _positions(np.array(aesthetic_kept), aesthetic_idx)])
        metrics = self.scorer.run_model(aes_frames, tech_frames)
        metrics.details["frames_decoded"] = len(fragments) + len(aesthetic)
        return metrics


def _positions(kept: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each wanted grid index sits among the kept frames (the nearest earlier one if the video ended early)."""
    return np.clip(np.searchsorted(kept, wanted, side="right") - 1, 0, max(0, len(kept) - 1))
