"""Production models' stand-ins that the tests build offline (no download): a random ONNX model with DOVER's
inputs and outputs, and a local co-tracker repository whose hubconf serves a tiny random tracker with a
checkpoint beside it. The real loaders of the DOVER and CoTracker3 backends run on them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

COTRACKER_HUBCONF = '''
"""A stand-in for facebookresearch/co-tracker's hubconf: same entry point and call, a tiny random model."""
import torch


class TinyTracker(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Linear(3, 2)

    def forward(self, video):
        return torch.tanh(self.shift(video.mean(dim=(3, 4)) / 255.0))  # (B, T, 2) px drift per frame


class Predictor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = TinyTracker()
        self.calls = []

    def forward(self, video, queries=None, grid_size=0):
        self.calls.append((tuple(video.shape), tuple(queries.shape)))
        drift = torch.cumsum(self.model(video), dim=1)
        tracks = queries[:, None, :, 1:] + drift[:, :, None, :]
        visibility = torch.ones(tracks.shape[:3], dtype=torch.bool)
        visibility[:, 1:, ::10] = False  # every tenth point hidden after the first frame
        return tracks, visibility


def cotracker3_offline(*, pretrained=True, **kwargs):
    assert not pretrained, "the backend must never ask for downloaded weights"
    return Predictor()
'''


def write_random_dover(path: Path, tech_clips: int | str = 3, input_names=("aes_view", "tech_view")) -> Path:
    """An ONNX model with DOVER's interface: aesthetic (1, 3, 32, 224, 224) and technical (clips, ...) views in,
    one score per clip out for each branch (aesthetic first); random per-channel weights, then the mean."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    nodes, weights, inputs, outputs = [], [], [], []
    for name, clips, out in [(input_names[0], 1, "aesthetic"), (input_names[1], tech_clips, "technical")]:
        weights.append(numpy_helper.from_array(rng.normal(0, 0.1, (1, 3, 1, 1, 1)).astype(np.float32), f"{out}_w"))
        nodes.append(helper.make_node("Mul", [name, f"{out}_w"], [f"{out}_x"]))
        nodes.append(helper.make_node("ReduceMean", [f"{out}_x"], [out], axes=[1, 2, 3, 4], keepdims=0))
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [clips, 3, 32, 224, 224]))
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [clips]))
    model = helper.make_model(helper.make_graph(nodes, "random_dover", inputs, outputs, weights), opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def write_random_cotracker(models: Path) -> Path:
    """`models/cotracker/co-tracker/hubconf.py` serving the tiny tracker, and its seeded random checkpoint at
    `models/cotracker/scaled_offline.pth` (the backend's default paths under a model dir)."""
    import torch

    hub = models / "cotracker" / "co-tracker"
    hub.mkdir(parents=True, exist_ok=True)
    (hub / "hubconf.py").write_text(textwrap.dedent(COTRACKER_HUBCONF))
    namespace: dict = {}
    exec(textwrap.dedent(COTRACKER_HUBCONF), namespace)
    torch.manual_seed(1)
    torch.save(namespace["TinyTracker"]().state_dict(), models / "cotracker" / "scaled_offline.pth")
    return models
