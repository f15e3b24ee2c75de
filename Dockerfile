# musicgen-pipeline: the Dagster code location, CLI and REST API in one image.
#
#   docker build -t musicgen-pipeline .                                   # CPU torch
#   docker build -t musicgen-pipeline --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .
#   docker run --rm -p 3000:3000 -v $PWD/data:/data musicgen-pipeline    # UI + daemon on :3000
#   docker run --rm -v $PWD/data:/data musicgen-pipeline musicgen-pipeline demo
#
# Models are not baked in: mount a Hugging Face cache at /root/.cache/huggingface (or set
# MUSICGEN_MODEL/DEMUCS_MODEL to mounted folders), or use tiny-random offline.
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rubberband-cli libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN pip install --no-cache-dir "${TORCH_SPEC}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY musicgen_pipeline ./musicgen_pipeline
RUN pip install --no-cache-dir ".[postgres]"
COPY workspace.yaml dagster.yaml ./
COPY examples ./examples

ENV MUSICGEN_DATA=/data \
    DAGSTER_HOME=/data/dagster_home \
    NUMBA_CACHE_DIR=/data/.numba \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 3000 8000

# The instance config is copied into DAGSTER_HOME on first start (an existing one is kept).
CMD ["sh", "-c", "mkdir -p \"$DAGSTER_HOME\" && { [ -f \"$DAGSTER_HOME/dagster.yaml\" ] || cp /app/dagster.yaml \"$DAGSTER_HOME/\"; } && exec dagster dev -w /app/workspace.yaml -h 0.0.0.0 -p 3000"]
