# Reelforge: a multi-stage build with uv. The first stage resolves and installs the locked
# dependencies and the project into /app/.venv; the second copies only that environment onto
# a slim Python and runs it as an unprivileged user. docs/deploy.md explains the settings.

FROM python:3.12-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9.2 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, from the lock alone, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN uv sync --locked --no-dev --no-editable

FROM python:3.12-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 reelforge \
    && useradd --system --uid 10001 --gid reelforge --home-dir /data --no-create-home reelforge \
    && mkdir -p /data \
    && chown reelforge:reelforge /data
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    REELFORGE_DATA_DIR=/data \
    REELFORGE_HOST=0.0.0.0 \
    REELFORGE_PORT=8000 \
    REELFORGE_LOG_FORMAT=json
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["reelforge"]
CMD ["serve"]
