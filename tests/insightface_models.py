"""ONNX models with the interfaces of InsightFace buffalo_l's detector and landmark model, built by the tests (the
real weights cannot be had offline). insightface's model zoo picks a model's class from exactly these interfaces.

- `write_scrfd`: det_10g.onnx's interface: input `input.1` (1, 3, H, W) with H and W dynamic, 9 outputs: scores
  (n, 1), box distances (n, 4) and keypoint offsets (n, 10) for strides 8, 16 and 32 in that order, n = H/s * W/s * 2
  anchors. A strided convolution with random weights per stride feeds the heads. The score heads are random too,
  plus a bias that makes exactly one anchor at stride 32 a face (cell `FACE_CELL` of a 640x640 input); the box and
  keypoint heads are constant (`FACE_DISTANCES`, `FACE_KPS_OFFSETS`), so the face the model reports is known.
- `write_landmark_3d_68`: 1k3d68.onnx's interface: input `data` (1, 3, 192, 192), output (1, 3309) = 1103 points
  x (x, y, z) of which insightface reads the last 68, in crop coordinates scaled to [-1, 1]. The output is
  insightface's mean face shape turned by `yaw` degrees, so the pose insightface solves from it is (0, yaw, 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STRIDES = (8, 16, 32)
ANCHORS = 2
FACE_CELL = (8, 5)  # (column, row) of the stride-32 grid: anchor centre (256, 160) in detector pixels
FACE_DISTANCES = (2.0, 2.5, 2.0, 2.5)  # left, top, right, bottom, in strides
FACE_KPS_OFFSETS = ((-0.8, -0.6), (0.8, -0.6), (0.0, 0.2), (-0.6, 0.9), (0.6, 0.9))  # in strides, from the centre
LANDMARK_POINTS = 1103
LANDMARK_SCALE = 0.5  # the mean shape spans about [-0.63, 0.63]: keep the face inside the crop


def _save(graph, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def write_scrfd(path: Path, seed: int = 0, channels: int = 4) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    outputs: dict[str, list] = {"score": [], "bbox": [], "kps": []}

    def constant(name: str, value, dtype=np.float32) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    for stride in STRIDES:
        feature = f"feature_{stride}"
        kernel = constant(f"backbone_w_{stride}", rng.normal(0, 0.01, (channels, 3, stride, stride)))
        nodes.append(helper.make_node("Conv", ["input.1", kernel], [f"{feature}_lin"], strides=[stride, stride], kernel_shape=[stride, stride]))
        nodes.append(helper.make_node("Relu", [f"{feature}_lin"], [feature]))
        for head, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            out_channels = ANCHORS * width
            if head == "score":
                head_w = rng.normal(0, 0.1, (out_channels, channels, 1, 1))
                head_b = np.full(out_channels, -8.0)
            else:
                head_w = np.zeros((out_channels, channels, 1, 1))
                values = FACE_DISTANCES if head == "bbox" else np.ravel(FACE_KPS_OFFSETS)
                head_b = np.tile(values, ANCHORS)
            name = f"{head}_{stride}"
            nodes.append(helper.make_node("Conv", [feature, constant(f"{name}_w", head_w), constant(f"{name}_b", head_b)], [f"{name}_map"]))
            last = f"{name}_map"
            if head == "score":
                if stride == STRIDES[-1]:
                    column, row = FACE_CELL
                    position = np.zeros((1, out_channels, 640 // stride, 640 // stride))
                    position[0, 0, row, column] = 16.0  # anchor 0 of that cell: a face
                    nodes.append(helper.make_node("Add", [last, constant("face_position", position)], [f"{name}_placed"]))
                    last = f"{name}_placed"
                nodes.append(helper.make_node("Sigmoid", [last], [f"{name}_prob"]))
                last = f"{name}_prob"
            # (1, anchors * width, h, w) -> rows ordered (y, x, anchor) as SCRFD's anchor centres are
            nodes.append(helper.make_node("Transpose", [last], [f"{name}_nhwc"], perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Reshape", [f"{name}_nhwc", constant(f"{name}_shape", [-1, width], np.int64)], [name]))
            outputs[head].append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n{stride}", width]))
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        weights,
    )
    return _save(graph, path)


def yawed_mean_shape(yaw_degrees: float) -> np.ndarray:
    """insightface's mean 68-point 3D face turned about the vertical axis (68 x 3)."""
    import pickle
    from importlib import resources

    mean = pickle.loads(resources.files("insightface").joinpath("data", "objects", "meanshape_68.pkl").read_bytes())
    angle = np.deg2rad(yaw_degrees)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    centred = np.asarray(mean, dtype=float) - np.asarray(mean, dtype=float).mean(axis=0)
    return centred @ rotation.T


def write_landmark_3d_68(path: Path, yaw: float = 0.0) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    points = np.zeros((LANDMARK_POINTS, 3))
    points[-68:] = LANDMARK_SCALE * yawed_mean_shape(yaw)
    nodes = [
        helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["colour"]),
        helper.make_node("Gemm", ["colour", "head_w", "head_b"], ["fc1"]),
    ]
    weights = [
        numpy_helper.from_array(np.zeros((3, LANDMARK_POINTS * 3), dtype=np.float32), "head_w"),  # the face does not move it
        numpy_helper.from_array(points.reshape(-1).astype(np.float32), "head_b"),
    ]
    graph = helper.make_graph(
        nodes,
        "landmark_3d_68_like",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, LANDMARK_POINTS * 3])],
        weights,
    )
    return _save(graph, path)


def write_buffalo_l(model_dir: Path, yaw: float = 0.0) -> Path:
    """Both files where the backends look for them: `<model_dir>/insightface/buffalo_l/`."""
    folder = model_dir / "insightface" / "buffalo_l"
    write_scrfd(folder / "det_10g.onnx")
    write_landmark_3d_68(folder / "1k3d68.onnx", yaw)
    return folder
