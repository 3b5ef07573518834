# feed-tweeter: `docker build -t feed-tweeter .` then
#   docker run -d --name feed-tweeter --env-file /etc/feed-tweeter.env \
#     -v feed-tweeter-data:/data --stop-timeout 20 -p 127.0.0.1:8080:8080 feed-tweeter
# Settings come from the environment (see .env.example); the database lives on the /data volume.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The code stays in /app and is installed in editable mode: bot/store.py reads its SQL
# migrations from ../migrations next to the bot package, which a plain wheel install would
# leave behind. /app is owned by root and read-only for the bot's user.
WORKDIR /app
COPY pyproject.toml README* ./
COPY bot/ ./bot/
COPY migrations/ ./migrations/
RUN pip install -e . \
    && python -c "import bot.store as s; assert s.available_migrations(), 'no migrations found'"

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
CMD ["python", "-m", "bot", "run"]
