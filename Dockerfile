# hallgrid images, one file, two targets (both slim, non-root, with a HEALTHCHECK):
#   docker build --target edge -t hallgrid-edge .   # `hallgrid edge`: base dependencies only (no hub extras)
#   docker build --target hub  -t hallgrid-hub .    # `hallgrid hub`: the hub extra (SQLAlchemy, PostgreSQL driver, ...)
# Models are not baked in: mount a folder of .onnx files at /models (the registry verifies them by sha256).
# State (outbox, hub database, session secret) lives in the /state volume (HALLGRID_STATE_DIR).
# compose.yaml runs both with a broker and PostgreSQL (README, "Running it with Docker compose").
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
# The wheel is built once from the source tree; the images install only the wheel, never the tree.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY calibration ./calibration
COPY edge ./edge
COPY hub ./hub
COPY models ./models
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="hallgrid" \
      org.opencontainers.image.description="People counting per zone and queue warnings for customer-service halls" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HALLGRID_MODEL_DIR=/models \
    HALLGRID_STATE_DIR=/state
RUN useradd --system --create-home --uid 10001 hallgrid \
    && mkdir -p /models /state && chown hallgrid /state

FROM runtime AS edge
LABEL org.opencontainers.image.title="hallgrid-edge"
COPY --from=wheel /wheels /wheels
RUN pip install /wheels/hallgrid-*.whl && rm -rf /wheels
ENV HALLGRID_METRICS_PORT=9108 \
    HALLGRID_METRICS_ADDR=0.0.0.0
USER 10001
WORKDIR /state
VOLUME ["/state"]
EXPOSE 9108
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('HALLGRID_METRICS_PORT', '9108'), timeout=4)"]
ENTRYPOINT ["hallgrid", "edge"]

FROM runtime AS hub
LABEL org.opencontainers.image.title="hallgrid-hub"
COPY --from=wheel /wheels /wheels
RUN pip install "$(echo /wheels/hallgrid-*.whl)[hub]" && rm -rf /wheels
ENV HALLGRID_HTTP=0.0.0.0:8080
USER 10001
WORKDIR /state
VOLUME ["/state"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('HALLGRID_HTTP', '0.0.0.0:8080').rpartition(':')[2], timeout=4)"]
ENTRYPOINT ["hallgrid", "hub"]
