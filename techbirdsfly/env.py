"""Read configuration from the environment: the only place settings come from.

A local ``.env`` file (``make install`` writes one for development) fills in what the environment
leaves unset; a variable set in the environment always wins over the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SystemExit(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# KEY=VALUE, optionally after "export ", the value optionally in single or double quotes (taken as is:
# no escapes, no ${...}), as docker compose and python-dotenv read the simple cases.
_ENV_LINE = re.compile(r"""^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:'([^']*)'|"([^"]*)"|(.*?))\s*$""")


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a ``.env`` file; blank lines and ``#`` comments are skipped."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise SystemExit(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        name, single, double, bare = match.groups()
        values[name] = next(value for value in (single, double, bare) if value is not None)
    return values


def load_env_file(default: Path) -> None:
    """Put the variables of the ``.env`` file into the environment where it does not set them.

    The file is ``DJANGO_ENV_FILE`` if set (empty: no file), else ``default``; a missing file is fine.
    Python-dotenv would do the same; a dozen lines spare the production image a dependency.
    """
    name = os.environ.get("DJANGO_ENV_FILE")
    path = default if name is None else Path(name) if name else None
    if path is None or not path.is_file():
        return
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)
