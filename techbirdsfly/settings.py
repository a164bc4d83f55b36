"""TechBirdsFly settings. Every value that varies between machines comes from the environment.

docs/configuration.md lists each variable; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from techbirdsfly.cache.policy import APPS, DEFAULT_PREFIX
from techbirdsfly.env import env_bool, env_float, env_int, env_list, env_str, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
# A local .env (git-ignored; make install writes one for development) fills in what the environment
# leaves unset, before anything below reads a variable.
load_env_file(BASE_DIR / ".env")

# --- core -----------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise SystemExit("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-DJANGO_DEBUG=1"  # noqa: S105
# Earlier keys, still accepted when verifying (tokens' MACs, signed values) while clients move on.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "techbirdsfly",
    "auth_app",
    "billing_app",
    "admin_app",
    "image_app",
    "user_app",
]

MIDDLEWARE = [
    # First, so that the latency it records for GET /metrics covers every other middleware too.
    "admin_app.metrics.RequestLatencyMiddleware",
    # Before anything spends work (or a Redis read) on a body that is refused anyway.
    "techbirdsfly.middleware.BodySizeLimitMiddleware",
    # Next: the request's cache scope (its Redis budget and its one read) covers everything below, and
    # a cached GET's read is on its way while everything below runs.
    "techbirdsfly.cache.middleware.RequestCacheMiddleware",
    "techbirdsfly.middleware.CacheTimingMiddleware",
    # Outside every other middleware, so that it also sees the HTML error pages of debug mode.
    "techbirdsfly.middleware.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "techbirdsfly.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "techbirdsfly.urls"
WSGI_APPLICATION = "techbirdsfly.wsgi.application"
ASGI_APPLICATION = "techbirdsfly.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: PostgreSQL in production, a SQLite file when DATABASE_URL is unset ---------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that server processes started by tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
    # runserver and the generator write at the same time: WAL, and write transactions that wait
    # for the lock up front instead of failing with "database is locked" halfway through.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A lost database answers 503 within seconds instead of hanging a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # A pool per process (psycopg_pool): a thread borrows a connection for a request (Django returns
    # it when the request ends) and threads past DATABASE_POOL_MAX wait up to DATABASE_POOL_TIMEOUT
    # (then 503), so a process never holds more than DATABASE_POOL_MAX connections, however many
    # threads it runs. 0 turns the pool off (one persistent connection per thread, DATABASE_CONN_MAX_AGE).
    # The default, one per gunicorn thread and one for the journal follower, never makes a request
    # wait: a thread that waits for a connection while holding a lock that connection holders wait
    # for (the journal's catch-up reads under its index lock) stalls them all until the timeout. Set
    # it lower only where requests may wait up to DATABASE_POOL_TIMEOUT and then answer 503.
    DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", env_int("GUNICORN_THREADS", 4) + 1)
    if DATABASE_POOL_MAX > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": min(env_int("DATABASE_POOL_MIN", 1), DATABASE_POOL_MAX),
            "max_size": DATABASE_POOL_MAX,
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 5.0),
        }
    # Names this process's connections in pg_stat_activity (and PgBouncer's SHOW CLIENTS).
    DATABASES["default"]["OPTIONS"].setdefault("application_name", env_str("DATABASE_APPLICATION_NAME", "techbirdsfly"))
# A connection that keeps session state (LISTEN) must reach PostgreSQL itself, not a PgBouncer in
# transaction mode: DATABASE_DIRECT_URL, when DATABASE_URL points at PgBouncer (techbirdsfly/db.py).
DATABASE_DIRECT_URL = env_str("DATABASE_DIRECT_URL")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "auth_app.User"
# Every login door (the API and Django's own forms) checks passwords through the throttled backend.
AUTHENTICATION_BACKENDS = ["auth_app.backends.ThrottledEmailBackend"]
# Argon2id first (auth_app/hashers.py: OWASP's minimum; its cost is in bench/LOGINS.md). PBKDF2 stays so
# that existing hashes verify; each is rehashed with Argon2id at its user's next login.
PASSWORD_HASHERS = [
    "auth_app.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Redis: one django-redis alias per app, each with its own key prefix ----------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Bound every wait on Redis: django-redis sets no socket timeout by default (PR #314, #473).
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.2)
REDIS_SOCKET_CONNECT_TIMEOUT = env_float("REDIS_SOCKET_CONNECT_TIMEOUT", 0.2)
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 64)
# After a Redis failure, skip Redis for this many seconds before one request probes it again.
CACHE_BREAKER_COOLDOWN = env_float("CACHE_BREAKER_COOLDOWN", 2.0)
# On a miss, how long a request waits for another request that is computing the same entry.
CACHE_FILL_WAIT = env_float("CACHE_FILL_WAIT", 5.0)
# Seconds of Redis time one HTTP request may spend in all; past it the request goes on without Redis.
CACHE_REQUEST_BUDGET = env_float("CACHE_REQUEST_BUDGET", 0.2)
# How often each process reads new rows of the invalidation journal (techbirdsfly/cache/follower.py):
# the guarantee behind the rows each commit pushes at once; 0 turns the follower thread off (the test
# runner does: tests call journal.catch_up themselves).
CACHE_JOURNAL_POLL = env_float("CACHE_JOURNAL_POLL", 1.0)
# On Redis Cluster, how long a process may serve its own copy of an entry it reads most
# (techbirdsfly/cache/hot.py): the bound on how stale such an entry can be after another process's
# write. 0 keeps no copies.
CACHE_HOT_COPY_SECONDS = env_float("CACHE_HOT_COPY_SECONDS", 0.5)


# Credentials of the app's ACL user (infra/redis/redis.conf) when they are not in REDIS_URL; unlike a
# URL, these need no percent-encoding.
REDIS_USERNAME = env_str("REDIS_USERNAME")
REDIS_PASSWORD = env_str("REDIS_PASSWORD")
# High availability: with REDIS_SENTINELS ("host:port,host:port,...") the app asks Sentinel for the
# current master named REDIS_SENTINEL_MASTER and follows it through failovers; REDIS_URL then only
# gives the database number (and credentials, if it has them).
REDIS_SENTINELS = env_list("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_PASSWORD = env_str("REDIS_SENTINEL_PASSWORD")
# Scale-out: with REDIS_CLUSTER_NODES ("host:port,...": any reachable nodes, the rest are discovered)
# the app runs on Redis Cluster through techbirdsfly/cache/cluster.py.
REDIS_CLUSTER_NODES = env_list("REDIS_CLUSTER_NODES")
if REDIS_SENTINELS and REDIS_CLUSTER_NODES:
    raise SystemExit("set REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both")


def _host_port(address: str, name: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"{name} must list host:port pairs, got {address!r}")
    return host.strip("[]"), int(port)


def redis_cache(
    prefix: str,
    location: str = REDIS_URL,
    *,
    sentinels: list[str] = REDIS_SENTINELS,
    sentinel_master: str = REDIS_SENTINEL_MASTER,
    sentinel_password: str = REDIS_SENTINEL_PASSWORD,
    cluster_nodes: list[str] = REDIS_CLUSTER_NODES,
    username: str = REDIS_USERNAME,
    password: str = REDIS_PASSWORD,
) -> dict:
    from urllib.parse import urlsplit

    options = {
        "CONNECTION_FACTORY": "techbirdsfly.cache.connection.ConnectionFactory",
        "SERIALIZER": "techbirdsfly.cache.serializers.SafeJSONSerializer",
        "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_CONNECT_TIMEOUT,
        "CONNECTION_POOL_KWARGS": {"max_connections": REDIS_MAX_CONNECTIONS},
    }
    if username:
        options["USERNAME"] = username
    if password:
        options["PASSWORD"] = password
    server: str | list[str] = location
    if cluster_nodes:
        nodes = [_host_port(node, "REDIS_CLUSTER_NODES") for node in cluster_nodes]
        server = ",".join(f"redis://{host}:{port}" for host, port in nodes)
        options["CLIENT_CLASS"] = "techbirdsfly.cache.cluster.ClusterClient"
    elif sentinels:
        url = urlsplit(location)
        userinfo = url.netloc.rpartition("@")[0]
        # A list holding only the master's URL: given a string, SentinelClient sends reads to a
        # replica, which lags behind invalidations (a revoked token could validate again).
        server = [f"redis://{userinfo + '@' if userinfo else ''}{sentinel_master}/{url.path.strip('/') or '0'}"]
        options |= {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "techbirdsfly.cache.connection.SentinelConnectionFactory",
            "SENTINELS": [_host_port(sentinel, "REDIS_SENTINELS") for sentinel in sentinels],
            "SENTINEL_KWARGS": {"password": sentinel_password} if sentinel_password else {},
        }
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server,
        "KEY_PREFIX": prefix,
        "KEY_FUNCTION": "techbirdsfly.cache.keys.make_key",
        "REVERSE_KEY_FUNCTION": "techbirdsfly.cache.keys.reverse_key",
        # The cache layer always passes the policy TTL; this only covers Django's own use.
        "TIMEOUT": 300,
        "OPTIONS": options,
    }


CACHES = {"default": redis_cache(DEFAULT_PREFIX)} | {app: redis_cache(prefix) for app, prefix in APPS.items()}

# --- REST framework and the OpenAPI schema -----------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["auth_app.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["techbirdsfly.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "techbirdsfly.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TechBirdsFly API",
    "DESCRIPTION": "The TechBirdsFly services as one Django project. Contract: docs/API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The 400/401/503 answers every operation shares, documented once (techbirdsfly/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "techbirdsfly.schema.document_error_answers",
    ],
}
# Request bodies larger than this are refused with 413 before parsing (techbirdsfly/middleware.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_MAX_BODY_BYTES", 1024 * 1024)

# --- auth tokens ---------------------------------------------------------------------------------
ACCESS_TOKEN_TTL = 60 * 60  # API.md: expiresIn 3600
REFRESH_TOKEN_TTL = env_int("REFRESH_TOKEN_TTL", 14 * 24 * 60 * 60)
LOGIN_FAILURE_LIMIT = 10  # API.md: 429 after 10 failed tries for one email within 60 s
LOGIN_ADDRESS_FAILURE_LIMIT = 20  # API.md: 429 after 20 failed logins from one address within 60 s
# Password checks one process runs at once (auth_app/throttle.py); more wait up to
# LOGIN_CONCURRENCY_WAIT seconds for a slot, then answer 429. Keeps a login flood from holding
# every worker thread.
LOGIN_CONCURRENCY = env_int("LOGIN_CONCURRENCY", 2)
LOGIN_CONCURRENCY_WAIT = env_float("LOGIN_CONCURRENCY_WAIT", 0.05)
if LOGIN_CONCURRENCY < 1:
    raise SystemExit("LOGIN_CONCURRENCY must be 1 or more")

# --- what one client may create -----------------------------------------------------------------
# API.md: at most this many new accounts per client address (an IPv6 /64) per hour, then 429.
REGISTRATION_ADDRESS_LIMIT = env_int("REGISTRATION_ADDRESS_LIMIT", 30)
REGISTRATION_ADDRESS_WINDOW = 60 * 60
# API.md: at most this many billing accounts per user; the next answers 409 (a state, not a rate).
BILLING_ACCOUNT_LIMIT = env_int("BILLING_ACCOUNT_LIMIT", 50)

# --- static files and media ------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- security (check --deploy) -------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# TLS ends at the proxy in front; it redirects http to https and sets X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front append to X-Forwarded-For (techbirdsfly/client.py): 0 ignores the header,
# n takes the n-th address from its right. Anything more than the real count lets clients pick an
# address and dodge the per-address login limit.
TRUSTED_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise SystemExit("DJANGO_TRUSTED_PROXY_COUNT must be 0 or more")
SILENCED_SYSTEM_CHECKS = env_list("DJANGO_SILENCED_SYSTEM_CHECKS")

# --- logging -----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

TEST_RUNNER = "techbirdsfly.testing.RedisTestRunner"
