"""The benchmark servers' WSGI entry: the app with bench.settings, optionally with the cache bypassed.

BENCH_CACHE_BYPASS=1 makes every cached read compute from the database and touch no Redis (the
"cache bypassed" column of RESULTS.md). It is installed here, before Django loads any app, so that
every module that imports ``get_or_compute`` gets the bypassing one.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

if os.environ.get("BENCH_CACHE_BYPASS") == "1":
    from bench.bypass import install

    install()

application = get_wsgi_application()
