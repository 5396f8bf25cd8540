# The bot's image: python -m bot as a non-root user, health checked on /healthz.
# Not built in CI (no container engine there): tests/test_deploy.py runs this file's install and
# start commands in a clean virtualenv instead; the README says what that does and does not cover.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PTB_TIMEDELTA=true \
    MALLOC_MMAP_THRESHOLD_=131072

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install -c constraints.txt .

# The bot runs from an empty folder (a .env may be mounted there); SQLite lives on /data.
RUN useradd --create-home --uid 10001 bot && mkdir -p /app /data && chown bot /app /data
WORKDIR /app
USER bot
ENV DATABASE_URL=sqlite:////data/bot.sqlite3 \
    WEB_SERVER=on \
    WEB_PORT=8080
VOLUME /data
EXPOSE 8080

# slim has no curl: Python's urllib asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WEB_PORT', '8080'), timeout=4)"]
# SIGTERM: unfinished deliveries get up to 15 s (bot/jobs/deliver.py STOP_GRACE_SECONDS).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
