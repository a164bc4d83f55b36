"""Settings of the benchmark's servers: the app's own, plus the floor endpoint and option switches.

Only ``python -m bench.run`` uses this module. Every switch defaults to production's choice, so with
no BENCH_* variable set the servers run exactly the app's configuration (plus one extra route).
"""

from techbirdsfly.env import env_str
from techbirdsfly.settings import *  # noqa: F403
from techbirdsfly.settings import CACHES

ROOT_URLCONF = "bench.urls"

# BENCH_SERIALIZER: "json" or "msgpack" swaps orjson for another encoder, signed the same way.
# BENCH_REDIS_PARSER: "python" forces redis-py's pure-Python RESP parser instead of hiredis.
_SERIALIZERS = {"json": "bench.serializers.SignedStdlibJSON", "msgpack": "bench.serializers.SignedMsgpack"}
_serializer = env_str("BENCH_SERIALIZER")
_parser = env_str("BENCH_REDIS_PARSER")
if _serializer and _serializer not in _SERIALIZERS:
    raise SystemExit(f"BENCH_SERIALIZER must be one of {', '.join(_SERIALIZERS)}, got {_serializer!r}")
if _parser not in ("", "python"):
    raise SystemExit(f"BENCH_REDIS_PARSER must be 'python' or unset, got {_parser!r}")
for _config in CACHES.values():
    if _serializer:
        _config["OPTIONS"]["SERIALIZER"] = _SERIALIZERS[_serializer]
    if _parser:
        _config["OPTIONS"]["PARSER_CLASS"] = "redis._parsers.resp2._RESP2Parser"
