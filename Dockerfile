# syntax=docker/dockerfile:1
# scrubgate: telemetry scrubbing proxy. Multi-stage, slim, non-root, read-only-root friendly.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY filters ./filters
RUN python -m venv /opt/scrubgate \
 && /opt/scrubgate/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/scrubgate/bin/pip install --no-cache-dir '.[fast]'

FROM python:3.11-slim
LABEL org.opencontainers.image.title="scrubgate" \
      org.opencontainers.image.description="Telemetry scrubbing proxy for self-hosted deployments"
RUN groupadd --system --gid 10001 scrubgate \
 && useradd --system --uid 10001 --gid scrubgate --no-create-home --shell /usr/sbin/nologin scrubgate \
 && mkdir -p /etc/scrubgate /var/lib/scrubgate/spool \
 && chown scrubgate:scrubgate /var/lib/scrubgate/spool
COPY --from=build /opt/scrubgate /opt/scrubgate
COPY config.example.yaml /etc/scrubgate/config.yaml
ENV PATH="/opt/scrubgate/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCRUBGATE_ADMIN_PORT=9090
USER 10001:10001
VOLUME ["/var/lib/scrubgate/spool"]
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/-/healthy' % os.environ.get('SCRUBGATE_ADMIN_PORT', '9090'), timeout=2)"]
ENTRYPOINT ["scrubgate"]
CMD ["run", "--config", "/etc/scrubgate/config.yaml"]
