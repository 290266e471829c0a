# The edge box image: `hallgrid edge` with the base dependencies only (no torch, no hub extras).
# Models are not baked in: mount a folder of .onnx files at /models (the registry verifies them).
#   docker build -t hallgrid-edge .
#   docker run --rm -v $PWD/models:/models:ro -v $PWD/site.yaml:/site/site.yaml:ro -v hallgrid-state:/state \
#     --env-file edge.env -p 9108:9108 hallgrid-edge --site /site/site.yaml --mqtt mqtt://broker:1883 \
#     --metrics-port 9108 --metrics-addr 0.0.0.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HALLGRID_MODEL_DIR=/models \
    HALLGRID_OUTBOX=/state/outbox.db

WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge ./edge
COPY hub ./hub
COPY calibration ./calibration
COPY models ./models
RUN pip install . && rm -rf /src \
    && useradd --system --create-home --uid 10001 hallgrid \
    && mkdir -p /models /state && chown hallgrid /state

USER hallgrid
WORKDIR /state
VOLUME ["/models", "/state"]
EXPOSE 9108
ENTRYPOINT ["hallgrid", "edge"]
CMD ["--help"]
