"""gunicorn settings for TechBirdsFly: ``gunicorn -c infra/gunicorn.conf.py techbirdsfly.wsgi``.

Every value can be overridden from the environment (GUNICORN_*), see docs/configuration.md.
"""

import math
import os
import shutil
import tempfile


def _cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (a container's --cpus).

    multiprocessing.cpu_count() reports the host's CPUs, which in a container limited to 2 CPUs on
    a 64-core host would start 129 workers, each with its own database and Redis connections.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS") or _cpus() * 2 + 1)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 0))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 0))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# The default format plus the time taken (ms): slow requests show in the log without a profiler.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
errorlog = "-"
# Worker heartbeats in memory: on a container's overlay filesystem /tmp can stall and get workers killed.
_SHM = "/dev/shm"  # noqa: S108 (heartbeat files only, as gunicorn's docs advise for Docker)
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
# No control socket unless asked for: its default path (~/.gunicorn) is shared by every server of
# the same user, and the container's user has no writable home.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
# Load the app in each worker, after fork: no Redis or database connection is shared by two processes.
preload_app = False

# Prometheus counters from every worker are summed through files in this directory
# (techbirdsfly/cache/stats.py). It must be empty when the server starts.
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tbf-metrics-"))


def on_starting(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
