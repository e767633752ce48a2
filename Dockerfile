# xinyi+ API and worker image: non-root, gunicorn via `xinyi serve`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY backend ./backend
COPY migrations ./migrations
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 XINYI_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
# /var/lib/xinyi/shred: the shred list's volume (closed accounts, replayed after a restore).
RUN useradd --system --uid 10001 --home /app xinyi \
    && mkdir -p /app /tmp/prometheus /var/lib/xinyi/shred \
    && chown xinyi /app /tmp/prometheus /var/lib/xinyi/shred
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=xinyi alembic.ini ./
COPY --chown=xinyi migrations ./migrations
# `xinyi db roles` (the compose stack's migrate step) applies the app role's privileges.
COPY --chown=xinyi docs/sql ./docs/sql
USER xinyi
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["xinyi", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
