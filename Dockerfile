# syntax=docker/dockerfile:1
# The treatment-course worker (`course worker`). Small image, non-root, dependencies pinned by
# requirements.lock (installed with --no-deps: nothing is resolved at build time).
#
#   docker build -t treatment-courses .
#   docker run --rm -e TEMPORAL_ADDRESS=... -e DATABASE_URL=... -e PAYLOAD_KEYS=... treatment-courses
#
# See docs/runbook.md and docs/docker.md.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# The build backend is pinned too (pyproject: setuptools>=68); it stays in this stage.
ARG SETUPTOOLS_VERSION=84.2.1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv \
 && python -m pip install "setuptools==${SETUPTOOLS_VERSION}"
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-deps -r requirements.lock
COPY pyproject.toml ./
COPY course ./course
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY application ./application
COPY cli ./cli
COPY api ./api
COPY trust ./trust
COPY migrations ./migrations
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/*.whl \
 && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 course \
 && useradd --system --uid 10001 --gid course --home-dir /app --shell /usr/sbin/nologin course \
 && mkdir -p /app/data \
 && chown -R course:course /app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    COURSE_DATA_DIR=/app/data \
    METRICS_BIND=0.0.0.0:9464 \
    HEALTH_BIND=0.0.0.0:8080
WORKDIR /app
USER course:course
# 9464: Prometheus (Temporal SDK metrics), 8080: GET /healthz.
EXPOSE 9464 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('HEALTH_BIND', ':8080').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
CMD ["course", "worker"]
