# TechBirdsFly API image: python:3.12-slim, runtime dependencies only (requirements.txt, never
# requirements-dev.txt), static files collected at build, gunicorn as a non-root user.
#   docker build -t techbirdsfly .
#   docker compose -f infra/docker-compose.yml up -d --build      (see docs/deployment.md)

# --- build: install the pinned requirements into a virtualenv -----------------------------------
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt

# --- runtime --------------------------------------------------------------------------------------
FROM python:3.12-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=techbirdsfly.settings \
    MEDIA_ROOT=/data/media

# A system user without a login shell; it owns nothing but the media and static volumes' directories.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && mkdir -p /data/media /data/static \
    && chown app:app /data/media /data/static

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The code stays owned by root and read-only to the app user.
COPY . .
# Static files are collected into the image; the compose files' `static` service copies them to
# /data/static, the volume nginx serves (WhiteNoise still serves them to whoever reaches gunicorn).
# The key exists only for this command (settings refuse to start without one); the real key comes
# from the environment at run time.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q /app

USER app
EXPOSE 8000
VOLUME ["/data/media"]
# 200 also when Redis is down (the app degrades); 503 when the database is down. DJANGO_ALLOWED_HOSTS
# must include 127.0.0.1 for this check (the compose files add it).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]
# Migrations run once per deploy (the compose files' `migrate` service), not at every start.
CMD ["gunicorn", "--config", "infra/gunicorn.conf.py", "techbirdsfly.wsgi:application"]
