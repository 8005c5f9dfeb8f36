"""Every metric a scorer may write to the catalog, which backends write it, and what its scale means.

Profiles are validated against this registry, so a typo in a profile is an error, not a criterion that never
matches. Kept free of heavy imports: the CLI and the DAG parser read it.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_METRICS = (
    "avg_movement",
    "min_movement",
    "avg_rotation",
    "min_rotation",
    "avg_orientation",
    "min_orientation",
    "avg_completeness",
    "min_completeness",
    "avg_resolution",
    "min_resolution",
    "face_consistency",
)


@dataclass(frozen=True)
class Metric:
    name: str
    scorer: str
    backends: tuple[str, ...]
    description: str


_REGISTRY: dict[str, Metric] = {}


def _register(scorer: str, backends: tuple[str, ...], **metrics: str) -> None:
    for name, description in metrics.items():
        _REGISTRY[name] = Metric(name, scorer, backends, description)


_register(
    "quality",
    ("dover",),
    dover_technical_raw="DOVER technical branch raw output (model units)",
    dover_aesthetic_raw="DOVER aesthetic branch raw output (model units)",
    dover_released=(
        "TalkVid's released `dover_scores` (released code's normalised score, typically 4-10): mean over DOVER's five "
        "validation sets of the z-score of the first output among the set's technical predictions, 2 decimals; "
        "judged by both shipped profiles (code >= 5, paper >= 7.0)"
    ),
    dover_overall="10 * sigmoid of DOVER's fused technical+aesthetic rescaling, 0-10 (DOVER's own fusion)",
    dover_technical="10 * sigmoid of DOVER's standardised technical output, 0-10",
)
_register(
    "quality",
    ("classical",),
    quality_technical="classical technical quality, 0-100 (higher is better); see talkvid_ops.score.quality",
    quality_sharpness="variance of the Laplacian on luma, normalised 0-100",
    quality_exposure="0-100, 100 when mean luma is mid-grey and nothing clips",
    quality_clipping="fraction of pixels at luma <= 2 or >= 253, 0-1",
    quality_noise="estimated noise sigma on luma (grey levels)",
    quality_blockiness="8x8 block-edge energy ratio (1 = no blocking)",
    quality_brisque="BRISQUE score (0 best, 100 worst)",
)
_register(
    "motion",
    ("lk", "cotracker3"),
    motion_valid_ratio_paper="paper definition: valid trajectories / K per 16-frame window, mean over windows",
    motion_visibility_code="released-code definition (as `cotracker_ratio`): mean point visibility per 6 s segment at 2 fps, minimum over segments, 0-1",
)
_register(
    "motion",
    ("lk-fast",),
    motion_valid_ratio_fast="the paper definition on half-size frames (short side 256, 16x16 grid in the central 128 px, steps <= 10 px), 0-1",
    motion_visibility_fast="the released-code definition on a 25x25 subset (every 4th row and column) of its 100x100 grid, 0-1",
)
_register("head", ("dlib", "fan"), **{m: f"TalkVid head-detail score {m} (0-100)" for m in HEAD_METRICS})


# the scale of each metric, short enough for a plot's axis
_SCALES = {
    "dover_released": "released-code DOVER, typically 4-10",
    "dover_overall": "0-10",
    "dover_technical": "0-10",
    "dover_technical_raw": "model units",
    "dover_aesthetic_raw": "model units",
    "quality_technical": "classical, 0-100",
    "quality_sharpness": "0-100",
    "quality_exposure": "0-100",
    "quality_clipping": "share 0-1",
    "quality_noise": "grey levels",
    "quality_blockiness": "ratio, 1 = none",
    "quality_brisque": "0 best - 100 worst",
    "motion_valid_ratio_paper": "paper definition, 0-1",
    "motion_visibility_code": "released-code definition, 0-1",
    "motion_valid_ratio_fast": "paper definition at half size, 0-1",
    "motion_visibility_fast": "released-code definition, 25x25 grid, 0-1",
    **dict.fromkeys(HEAD_METRICS, "0-100"),
}


def metric_axis(backend: str, metric: str) -> str:
    """An axis label naming the backend, the metric and its scale."""
    return f"{backend}: {metric} ({_SCALES.get(metric, 'see catalog.metrics')})"


def get_metric(name: str) -> Metric | None:
    return _REGISTRY.get(name)


def all_metrics() -> dict[str, Metric]:
    return dict(_REGISTRY)


def all_backends() -> set[str]:
    return {b for m in _REGISTRY.values() for b in m.backends}
