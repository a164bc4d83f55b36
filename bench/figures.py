"""One run's figures read and formatted the same way in every part of bench/RESULTS.md."""

from __future__ import annotations


def fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def fmt_x(value: float) -> str:
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x"


def fmt_ok(met: bool) -> str:
    return "met" if met else "**MISSED**"


def rps(run: dict) -> float:
    return run["requests"] / run["seconds"] if run["seconds"] else 0.0


def p50(run: dict) -> float:
    return run["latency_ms"]["p50"]


def p99(run: dict) -> float:
    return run["latency_ms"]["p99"]


def failed(run: dict) -> int:
    """Answers other than 200, plus requests lost to socket errors or timeouts."""
    return run["not_ok"] + sum(run["errors"].get(k, 0) for k in ("connect", "read", "write", "timeout"))


def cpu_ms(run: dict, name: str = "app") -> float:
    """CPU milliseconds per request of the process ``name`` (0.0 when not measured)."""
    seconds = run.get("extra", {}).get("cpu", {}).get(name)
    return seconds * 1000 / run["requests"] if seconds is not None and run["requests"] else 0.0


def fmt_cpu(run: dict, name: str = "app") -> str:
    """``cpu_ms`` for a table: "-" when not measured."""
    seconds = run.get("extra", {}).get("cpu", {}).get(name)
    return f"{cpu_ms(run, name):.3f}" if seconds is not None and run["requests"] else "-"
