# syntax=docker/dockerfile:1
# The pipeline's image. Targets:
#   production (default)  the four pipeline services and the `lava` CLI; real AWS; no moto, no
#                         test tooling, no local tooling (devstack/), no control extra
#   control               the same plus the control extra (FastAPI, uvicorn, PyJWT): the
#                         control service's image
#   local                 every component plus the local tooling (devstack/: the moto server,
#                         the local SNS key) for the Ground Truth emulator, docker-compose and
#                         the `local` k8s overlay
# Dependencies come from the hashed lock files (requirements/*.lock, scripts/lock.sh) and are
# installed in their own stages, so a code change rebuilds only the small `app` layer.
#
# The base is pinned to an exact Python and Debian release. Pin its digest as well where a
# registry is reachable (`docker buildx imagetools inspect python:3.11.14-slim-bookworm`, then
# append @sha256:<digest> below); this repository's machines reach no image registry.
FROM python:3.11.14-slim-bookworm AS python-base

# --- locked third-party dependencies, one virtualenv per target ----------------------------
FROM python-base AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# --without-pip: the image's pip installs into the venv (pip --python), so none ships in it.
RUN python -m venv --without-pip /opt/venv
COPY requirements/production.lock /tmp/requirements.lock
RUN pip --python /opt/venv/bin/python install --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python-base AS control-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv --without-pip /opt/venv
COPY requirements/control.lock /tmp/requirements.lock
RUN pip --python /opt/venv/bin/python install --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python-base AS local-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv --without-pip /opt/venv
COPY requirements/local.lock /tmp/requirements.lock
# (localstack-client is published as a source archive only, hence no --only-binary here)
RUN pip --python /opt/venv/bin/python install --no-deps --require-hashes \
        -r /tmp/requirements.lock \
    && /opt/venv/bin/python -m compileall -q /opt/venv

# --- the project itself: built as a wheel (locked setuptools), installed without deps ------
FROM python-base AS app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/build.lock /tmp/build.lock
RUN pip install --no-deps --require-hashes -r /tmp/build.lock
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
COPY emulators emulators
COPY lava lava
# Installed by the venv's interpreter so the `lava` script's #! names /opt/venv/bin/python,
# which the runtime stages have (from deps or local-deps).
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-deps --no-compile --target /opt/app \
        /dist/*.whl \
    && python -m compileall -q /opt/app

# --- runtime: non-root, read-only code, nothing writable but /tmp ---------------------------
FROM python-base AS runtime
# pip and setuptools are build tools: the running image needs neither.
RUN rm -rf /usr/local/lib/python3.11/site-packages/pip* \
        /usr/local/lib/python3.11/site-packages/setuptools* /usr/local/bin/pip*
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/app PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    LAVA_LOG__FORMAT=json LAVA_RUNTIME__HEALTH_HOST=0.0.0.0 LAVA_INGEST__WORK_DIR=/tmp
WORKDIR /tmp
EXPOSE 8080
# Kubernetes uses its own probes; this serves `docker run` and compose.
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["lava", "--help"]

# The local target adds the local tooling (devstack/: the moto server, the local SNS key); the
# production image never holds it, and no pipeline service imports it (test_architecture.py).
FROM app AS local-app
COPY devstack devstack
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /dist-local . \
    && pip --python /opt/venv/bin/python install --no-deps --no-compile --upgrade \
        --target /opt/app /dist-local/*.whl \
    && python -m compileall -q /opt/app

FROM runtime AS local
COPY --from=local-deps /opt/venv /opt/venv
COPY --from=local-app /opt/app /opt/app
# docker-compose's shared volumes (the local SNS signing key, the broker definitions) take
# these directories' owner when first mounted, so the non-root user can write them.
RUN mkdir -p /sns-key /definitions && chown 10001:10001 /sns-key /definitions \
    && chmod 0700 /sns-key
USER 10001:10001

FROM runtime AS control
COPY --from=control-deps /opt/venv /opt/venv
COPY --from=app /opt/app /opt/app
USER 10001:10001

FROM runtime AS production
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/app /opt/app
USER 10001:10001
