"""The image app's tunables: a Django setting if the project defines one, else the environment.

Read at call time, so tests can override them with ``override_settings``.
"""

from __future__ import annotations

from django.conf import settings

from techbirdsfly.env import env_float, env_int


def _positive(name: str, value: float) -> float:
    if value <= 0:
        raise SystemExit(f"{name} must be positive, got {value!r}")
    return value


def queue_limit() -> int:
    """Images one user may have queued or running at once; one more is refused with 429."""
    name = "IMAGE_QUEUE_LIMIT"
    return int(_positive(name, getattr(settings, name, None) or env_int(name, 10)))


def lease_seconds() -> int:
    """How long a generator may hold a running job before another may take it over."""
    name = "GENERATOR_LEASE_SECONDS"
    return int(_positive(name, getattr(settings, name, None) or env_int(name, 60)))


def max_attempts() -> int:
    """Claims of one job (leases that ran out) before it is failed rather than retried."""
    name = "GENERATOR_MAX_ATTEMPTS"
    return int(_positive(name, getattr(settings, name, None) or env_int(name, 3)))


def poll_seconds() -> float:
    """How long an idle generator waits before it looks at the queue again."""
    name = "GENERATOR_POLL_SECONDS"
    return _positive(name, getattr(settings, name, None) or env_float(name, 1.0))


def test_slowdown_seconds() -> float:
    """TEST ONLY: extra seconds each render takes, so tests can kill or stop a worker mid-job."""
    return max(env_float("GENERATOR_TEST_SLOWDOWN_SECONDS", 0.0), 0.0)
