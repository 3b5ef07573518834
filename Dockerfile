# syntax=docker/dockerfile:1
# feed-tweeter: `docker build -t feed-tweeter .` then
#   docker run -d --name feed-tweeter --env-file /etc/feed-tweeter.env \
#     -v feed-tweeter-data:/data --stop-timeout 20 -p 127.0.0.1:8080:8080 feed-tweeter
# Settings come from the environment (see .env.example); the database lives on the /data volume.

# -- stage 1: the project's wheel (the SQL migrations ship inside it, as bot/migrations/) ----
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot/ ./bot/
COPY migrations/ ./migrations/
RUN pip wheel --no-deps --wheel-dir /dist .

# -- stage 2: the service: the pinned, hash-checked dependencies of requirements.lock, then
# the wheel alone. No source tree, no editable install, no compiler (every pinned package has a
# binary wheel for this Python: if one had none, this step fails instead of compiling).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,from=build,source=/dist,target=/tmp/dist \
    pip install --only-binary=:all: --require-hashes -r /tmp/requirements.lock \
    && pip install --no-deps /tmp/dist/*.whl \
    && pip check \
    && cd / && feed-tweeter --version \
    && python -c "import bot.schema as s; assert s.migration_scripts(), 'no migrations'"
ENV PYTHONDONTWRITEBYTECODE=1

RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin bot \
    && mkdir /data && chown bot:bot /data
VOLUME /data

ENV DATABASE_PATH=/data/bot.sqlite3 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080
EXPOSE 8080

USER bot
# /healthz answers 503 while posting is broken (credentials rejected, credits spent).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HTTP_PORT', '8080'), timeout=4)"]
# SIGTERM (docker stop) stops the bot gracefully: posts in flight get SHUTDOWN_GRACE
# seconds (default 10), so give `docker stop` more than that (--stop-timeout 20).
STOPSIGNAL SIGTERM
CMD ["feed-tweeter", "run"]
