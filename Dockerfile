# musicgen-pipeline images. One image for the code server and every run (the default target), and a small
# one for the Dagster webserver and daemon (target `dagster`: no model stack), as in Dagster's
# examples/deploy_docker. Used by deploy/compose/docker-compose.yml; on Kubernetes the default target is
# the user-code image of the Helm chart (deploy/helm/values.yaml).
#
#   docker build -t musicgen-pipeline .                                              # CPU torch
#   docker build -t musicgen-pipeline --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .
#   docker build -t musicgen-pipeline-dagster --target dagster .
#
# Default command: the code server (`dagster api grpc ... -p 4000`). Other commands of the same image:
#   docker run --rm -v $PWD/data:/data musicgen-pipeline musicgen-pipeline demo     # one render, no services
#   docker run --rm -p 3000:3000 -v $PWD/data:/data musicgen-pipeline dagster-dev-demo
#     The one-container demo: `dagster dev` (UI + daemon in one process, SQLite). Dagster documents
#     `dagster dev` as for local development only; deploy with README "Deploy" instead.
#
# Models are not baked in: mount a Hugging Face cache (HF_HOME, read-only is enough) or set
# MUSICGEN_MODEL/DEMUCS_MODEL to mounted folders; tiny-random works offline.
FROM python:3.11-slim AS base
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rubberband-cli libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home
RUN mkdir -p "$DAGSTER_HOME"

# Webserver + daemon: Dagster, its Postgres and Docker/Kubernetes launchers, and only the dependency-free
# modules the instance names (musicgen_pipeline.run_coordinator, musicgen_pipeline.run_launcher).
FROM base AS dagster
RUN pip install --no-cache-dir dagster==1.13.27 dagster-webserver==1.13.27 dagster-postgres==0.29.27 \
    dagster-docker==0.29.27 dagster-k8s==0.29.27
WORKDIR /opt/dagster/app
COPY pyproject.toml README.md ./
COPY musicgen_pipeline ./musicgen_pipeline
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import musicgen_pipeline.run_coordinator, musicgen_pipeline.run_launcher"
COPY deploy ./deploy
WORKDIR /opt/dagster/dagster_home

# Code server and runs: the whole project.
FROM base AS app
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"
WORKDIR /app
RUN pip install --no-cache-dir "${TORCH_SPEC}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY musicgen_pipeline ./musicgen_pipeline
RUN pip install --no-cache-dir ".[postgres,k8s,docker]"
COPY workspace.yaml ./
COPY deploy ./deploy
COPY examples ./examples
COPY deploy/dagster-dev-demo /usr/local/bin/dagster-dev-demo

ENV MUSICGEN_DATA=/data \
    NUMBA_CACHE_DIR=/tmp/numba \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
VOLUME ["/data"]
EXPOSE 4000 3000 8000

CMD ["dagster", "api", "grpc", "-m", "musicgen_pipeline.definitions", "-a", "defs", "-h", "0.0.0.0", "-p", "4000"]
