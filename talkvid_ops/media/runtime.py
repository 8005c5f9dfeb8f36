"""Where the ONNX models that read frames run: the execution providers for a configured device."""

from __future__ import annotations


def onnx_providers(device: str) -> list[str]:
    """CUDA first when the device is `cuda` and the installed onnxruntime has it (onnxruntime-gpu), else the CPU."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return providers
