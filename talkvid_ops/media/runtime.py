"""How the models that read frames run: loaded lazily, once per process, and on which ONNX execution providers."""

from __future__ import annotations

import threading


class LoadsOnce:
    """Something holding models that load on first use, once per process: `load()` calls `_load` the first time
    (idempotent and thread-safe), so constructing one costs nothing and a task that needs no model loads none."""

    def __init__(self) -> None:
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> None:
        """Load models or weights; the default needs none."""

    def load(self) -> None:
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True


def onnx_providers(device: str) -> list[str]:
    """CUDA first when the device is `cuda` and the installed onnxruntime has it (onnxruntime-gpu), else the CPU."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return providers
