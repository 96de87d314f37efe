# CPU image of the compliance monitor: the review service (`compliance serve`), its workers
# (`compliance worker --celery`) and the CLI.
#
#   docker build -t compliance .                          # weights installed into the image
#   docker build --build-arg INSTALL_MODELS=0 -t compliance .   # ... or mounted at run time:
#   docker run -v $PWD/models/weights:/app/models/weights -p 8000:8000 compliance
#
# Data (SQLite database, uploaded recordings, the generated key if COMPLIANCE_SECRET_KEY is unset,
# the similarity layer's cache of training-row embeddings) lives in /data: mount a volume there.
# docker-compose.yml runs the full stack.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    COMPLIANCE_HOME=/app COMPLIANCE_DATA_DIR=/data COMPLIANCE_CACHE_DIR=/data/cache HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=false \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libsndfile1 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin compliance

WORKDIR /app
# Dependencies first (a layer that survives code changes). torch is pinned by constraints.txt; for a
# CPU-only torch pass PyTorch's CPU wheel index as TORCH_INDEX_URL (the default index may give a
# CUDA build, which works on CPU but is several GB larger).
ARG TORCH_INDEX_URL=""
COPY pyproject.toml constraints.txt README.md ./
RUN python -m venv /opt/venv \
 && pip install -U pip wheel \
 && if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    else pip install -c constraints.txt torch==2.13.0; fi
COPY compliance ./compliance
COPY rules ./rules
COPY models/manifest.yaml ./models/manifest.yaml
COPY scripts ./scripts
COPY alembic.ini ./
# Editable: code, rules, model manifest and migrations all stay under /app (COMPLIANCE_HOME).
RUN pip install -c constraints.txt -e . \
 && python scripts/fix_torchaudio.py

ARG INSTALL_MODELS=1
RUN if [ "$INSTALL_MODELS" = "1" ]; then compliance models install; fi \
 && mkdir -p /data /app/models/weights \
 && chown -R compliance /data /app/models/weights

USER compliance
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["compliance", "serve", "--host", "0.0.0.0", "--port", "8000"]
