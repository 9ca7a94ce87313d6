# syntax=docker/dockerfile:1
# scrubgate: telemetry scrubbing proxy. Multi-stage, slim, non-root, and fit for a
# read-only root filesystem: at run time it writes only to the spool volume (and /tmp,
# which --read-only users mount as a tmpfs). See docs/deployment.md.
#
#   docker build -t scrubgate:0.1.0 .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 -e SCRUBGATE_HASH_KEY \
#     -v "$PWD/settings.yaml:/etc/scrubgate/config.yaml:ro" scrubgate:0.1.0

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# A C compiler for the build stage only: setup.py compiles the engine's hot modules with
# mypyc (without one the engine installs as pure Python, ~1.3x slower). The runtime image
# has no compiler. Package versions follow the Debian release of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md ./
COPY proxy ./proxy
COPY filters ./filters
# pip compiles every module to bytecode while installing, so nothing is compiled (and
# written) at run time.
RUN python -m venv /opt/scrubgate \
 && /opt/scrubgate/bin/pip install '.[fast]'

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="scrubgate" \
      org.opencontainers.image.description="Telemetry scrubbing proxy for self-hosted deployments" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 scrubgate \
 && useradd --system --uid 10001 --gid scrubgate --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin scrubgate \
 && mkdir -p /etc/scrubgate /var/lib/scrubgate/spool \
 && chown scrubgate:scrubgate /var/lib/scrubgate/spool \
 && chmod 0700 /var/lib/scrubgate/spool
COPY --from=build /opt/scrubgate /opt/scrubgate
# The documented example; mount your own settings over it (a file, or a ConfigMap
# directory at /etc/scrubgate).
COPY config.example.yaml /etc/scrubgate/config.yaml
ENV PATH="/opt/scrubgate/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCRUBGATE_ADMIN_PORT=9090 \
    SCRUBGATE_HOST=0.0.0.0 \
    SCRUBGATE_SPOOL_DIR=/var/lib/scrubgate/spool
USER 10001:10001
VOLUME ["/var/lib/scrubgate/spool"]
EXPOSE 8080 9090
# /-/healthy needs no admin token. The check runs inside the container, so it reaches an
# admin listener on 127.0.0.1 or 0.0.0.0. Keep SCRUBGATE_ADMIN_PORT in step with
# admin.port if your settings do not read it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/-/healthy' % os.environ.get('SCRUBGATE_ADMIN_PORT', '9090'), timeout=2)"]
ENTRYPOINT ["scrubgate"]
CMD ["run", "--config", "/etc/scrubgate/config.yaml", "--log-format", "json"]
