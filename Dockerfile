# syntax=docker/dockerfile:1.7
# The production images, one multi-stage build (docker build --target NAME -t talkvid-NAME .):
#   airflow            Airflow 3 + talkvid + ffmpeg + the CPU model stack: api-server, scheduler, dag-processor,
#                      triggerer and the CPU Celery worker
#   airflow-gpu        the GPU Celery worker (queue `gpu`): the above + CUDA torch, face-alignment, onnxruntime-gpu
#   operator-gpu       what the Docker and Kubernetes runners start, `talkvid <stage> --batch ID`: CUDA torch,
#                      face-alignment (FAN), DOVER (ONNX on onnxruntime-gpu) and CoTracker3 loaders, insightface
#                      (buffalo_l head detail) and transformers (the captioner); the gpu extra brings the last two
#   operator-whisperx  segmentation with WhisperX, whose torch pin cannot live beside ours: its own image
#
# Model weights are never downloaded at run time. They live in a volume mounted at /models:
#   /models/dover/onnx_dover.onnx            DOVER export            (score.dover_model)
#   /models/cotracker/co-tracker/            CoTracker3 code         (score.cotracker_hub_dir)
#   /models/cotracker/scaled_offline.pth     CoTracker3 weights      (score.cotracker_checkpoint)
#   /models/torch/hub/checkpoints/           face-alignment FAN      (TORCH_HOME=/models/torch)
#   /models/insightface/buffalo_l/           InsightFace det_10g.onnx + 1k3d68.onnx (head_backend insightface; fan's detector)
#   /models/captioner/<model>/               Qwen2.5-VL model directory (caption.model_dir)
#   /models/whisper/<model>/                 CTranslate2 Whisper     (segment.asr.model_dir)
#   /models/huggingface/                     WhisperX alignment      (HF_HOME, offline)

ARG PYTHON_VERSION=3.11
ARG AIRFLOW_VERSION=3.3.2
ARG TORCH_VERSION=2.13.0
ARG ONNXRUNTIME_GPU_VERSION=1.30.0
ARG WHISPERX_VERSION=3.8.6

# --- the talkvid wheel, built once ----------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY talkvid_ops ./talkvid_ops
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- Airflow with talkvid -------------------------------------------------------------------------------------------
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS airflow
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg opencv-data \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /models /opt/talkvid/models && chown airflow:root /data /models /opt/talkvid/models
USER airflow
COPY constraints.txt /opt/talkvid/constraints.txt
COPY --from=wheel /wheels /opt/talkvid/wheels
# the contrib OpenCV build (BRISQUE) must own the cv2 package, whatever else declared opencv-python
ENV TALKVID_MODEL_DIR=/opt/talkvid/models
# the multilingual Whisper model is part of the image (checksum pinned): spoken language without configuration
RUN pip install --no-cache-dir -c /opt/talkvid/constraints.txt "$(ls /opt/talkvid/wheels/talkvid-*.whl)[airflow,cpu,fab]" \
 && pip install --no-cache-dir -c /opt/talkvid/constraints.txt --no-deps --force-reinstall opencv-contrib-python-headless \
 && talkvid models fetch
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
ENV TALKVID_DATA_DIR=/data \
    TORCH_HOME=/models/torch \
    HF_HOME=/models/huggingface \
    HF_HUB_OFFLINE=1

# --- the GPU Celery worker ------------------------------------------------------------------------------------------
FROM airflow AS airflow-gpu
ARG TORCH_VERSION
ARG ONNXRUNTIME_GPU_VERSION
# torch from PyPI on Linux is the CUDA build (its CUDA runtime comes as nvidia-* wheels; the host brings the driver)
RUN pip install --no-cache-dir -c /opt/talkvid/constraints.txt "torch==${TORCH_VERSION}" "$(ls /opt/talkvid/wheels/talkvid-*.whl)[gpu]" \
 && pip install --no-cache-dir -c /opt/talkvid/constraints.txt --no-deps face-alignment \
 && pip install --no-cache-dir -c /opt/talkvid/constraints.txt --no-deps --force-reinstall opencv-contrib-python-headless \
 && pip uninstall -y onnxruntime \
 && pip install --no-cache-dir "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}"

# --- the operator images the Docker / Kubernetes runners start ------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS operator-base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg opencv-data \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 50000 talkvid \
 && mkdir -p /data /models && chown talkvid /data /models
COPY constraints.txt /opt/talkvid/constraints.txt
COPY --from=wheel /wheels /opt/talkvid/wheels
ENV TALKVID_DATA_DIR=/data \
    TALKVID_MODEL_DIR=/opt/talkvid/models \
    TORCH_HOME=/models/torch \
    HF_HOME=/models/huggingface \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["talkvid"]
CMD ["--help"]

FROM operator-base AS operator-gpu
ARG TORCH_VERSION
ARG ONNXRUNTIME_GPU_VERSION
RUN pip install --no-cache-dir -c /opt/talkvid/constraints.txt "torch==${TORCH_VERSION}" "$(ls /opt/talkvid/wheels/talkvid-*.whl)[cpu,gpu]" \
 && pip install --no-cache-dir -c /opt/talkvid/constraints.txt --no-deps face-alignment \
 && pip install --no-cache-dir -c /opt/talkvid/constraints.txt --no-deps --force-reinstall opencv-contrib-python-headless \
 && pip uninstall -y onnxruntime \
 && pip install --no-cache-dir "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}" \
 && talkvid models fetch
USER talkvid

FROM operator-base AS operator-whisperx
ARG WHISPERX_VERSION
# WhisperX pins its own torch: our pins apply to everything else
RUN grep -v -E '^(torch|torchaudio|torchvision|nvidia-[a-z0-9-]+|triton)==' /opt/talkvid/constraints.txt > /opt/talkvid/constraints-whisperx.txt \
 && pip install --no-cache-dir -c /opt/talkvid/constraints-whisperx.txt "whisperx==${WHISPERX_VERSION}" "$(ls /opt/talkvid/wheels/talkvid-*.whl)[cpu]" \
 && pip install --no-cache-dir -c /opt/talkvid/constraints-whisperx.txt --no-deps --force-reinstall opencv-contrib-python-headless \
 && talkvid models fetch
USER talkvid
