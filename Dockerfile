# The voice backend as a container: Debian's ffmpeg for long media, the hash-locked Python packages,
# a non-root user, and hypercorn bound to $PORT (Render sets it; hypercorn ignores it without --bind).
# tests/test_dockerfile.py runs these same install and start steps on the CI machine.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffmpeg/ffprobe: media probing, extraction and chunking (long media, Whisper uploads over the limit).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
WORKDIR /app

# Dependencies first, so a code change reuses this layer. --no-deps: nothing outside the lock gets in.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock && pip check

COPY --chown=app:app . .
USER app

ENV PORT=8000 \
    APP_ENV=production \
    LOG_FORMAT=json \
    JOBS_DIR=/app/data/jobs
EXPOSE 8000

# Liveness only (the event loop answers); readiness is Render's healthCheckPath, /health.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["sh", "-c", "exec hypercorn --config hypercorn.toml --bind 0.0.0.0:${PORT} asgi:application"]
