"""What the comparisons (serializers, parsers, server variants) say about the defaults, in one run's figures."""

from __future__ import annotations

from .figures import failed, fmt_cpu, rps


def _spread(run: dict) -> str:
    rounds = run.get("extra", {}).get("rounds") or []
    if len(rounds) < 2:
        return ""
    values = [r["rps"] for r in rounds]
    return f" (rounds {min(values):,.0f}-{max(values):,.0f} req/s)"


def choices(results: dict) -> list[str]:
    """What the comparisons say about the defaults, in this run's figures."""
    codecs = {(c["codec"], c["payload"]): c for c in results["codecs"]["codecs"]}
    payloads = list(dict.fromkeys(c["payload"] for c in results["codecs"]["codecs"]))
    signed = ["orjson + HMAC (production)", "msgpack + HMAC", "stdlib json + HMAC"]

    def total(codec: str) -> str:
        return ", ".join(f"{codecs[(codec, p)]['total_us']:.1f}" for p in payloads)

    parsers = {(p["parser"].split(" ")[0], p["operation"]): p["us_per_call"] for p in results["codecs"]["parsers"]}
    ops = list(dict.fromkeys(op for _, op in parsers))
    hmac = {name: us for name, us in results["codecs"]["hmac_us"].items() if "synthetic" not in name}
    variants = results["variants"]
    sums = {c: sum(codecs[(c, p)]["total_us"] for p in payloads) for c in signed}
    best = min(signed, key=sums.get)
    if best == signed[0] or sums[best] > 0.9 * sums[signed[0]]:
        verdict = "**Serializer: orjson + HMAC stays** (the fastest safe choice, or within 10% of it)."
    else:
        verdict = (
            f"**Serializer: {best} is {1 - sums[best] / sums[signed[0]]:.0%} faster than orjson + HMAC** over these "
            "entries; a change the lead may weigh against orjson's readable values in redis-cli."
        )
    out = [
        "## Choices kept",
        "",
        f"- {verdict} Store + read in µs ({', '.join(payloads)}): orjson {total(signed[0])}; "
        f"msgpack {total(signed[1])}; stdlib json {total(signed[2])}. pickle is not an option whatever its speed: "
        "loading a pickle runs code, so anyone who can write to Redis could run code in the app (django-redis "
        "#424); it is measured only for reference.",
        f"- **The HMAC signature stays**: sign + verify costs {min(hmac.values()):.1f}-{max(hmac.values()):.1f} µs per "
        "entry of the real sizes, a few per cent of one request's CPU, and without it a Redis writer could forge a "
        "token record and log in as anyone.",
    ]
    if ops:
        parts = []
        for op in ops:
            fast, slow = parsers.get(("hiredis", op), 0.0), parsers.get(("pure", op), 0.0)
            gain = 1 - fast / slow if slow else 0.0
            word = f"hiredis {gain:.0%} faster" if gain > 0.05 else "no measurable difference"
            parts.append(f"{op}: {fast:.1f} µs with hiredis, {slow:.1f} µs without ({word})")
        out.append(
            "- **hiredis stays** (redis[hiredis] in requirements.txt; redis-py uses it when installed): "
            + "; ".join(parts)
            + ". Our cache values are single bulk strings, where parsing is a small part of a round trip; hiredis "
            "pays off on replies of many elements (key listings, MGET of many keys)."
        )
    base = variants.get("baseline")
    if base:
        target = next(iter(base["runs"]))

        def fig(name: str) -> str:
            run = variants[name]["runs"][target]
            hits = run["from_cache"] / run["requests"] if run["requests"] else 0
            return (
                f"{rps(run):,.0f} req/s{_spread(run)}, app CPU {fmt_cpu(run, 'app')} ms/req, "
                f"{hits:.0%} hits, {failed(run)} failed"
            )

        out.append(f"- **Whole stack, `{target}`** -- baseline: {fig('baseline')}.")
        notes = {
            "json": "stdlib json instead of orjson",
            "msgpack": "msgpack instead of orjson",
            "python-parser": "without hiredis",
            "pool-4": "REDIS_MAX_CONNECTIONS=4 (= GUNICORN_THREADS)",
            "pool-2": "REDIS_MAX_CONNECTIONS=2 (< GUNICORN_THREADS): threads find no free connection, redis-py raises, "
            "the breaker opens and reads fall back to the database",
            "sync": "sync workers (no keep-alive; one request at a time per process)",
            "gthread-fewer": "gthread with one worker per CPU",
            "unix-socket": "Redis over a Unix socket (only possible when Redis runs on the same host)",
        }
        for name, note in notes.items():
            if name in variants:
                out.append(f"  - {note}: {fig(name)}.")
        out.append(
            "  Differences within the baseline's own round-to-round spread are noise on this shared machine. Keep "
            "REDIS_MAX_CONNECTIONS (default 64) at or above GUNICORN_THREADS (default 4): a smaller pool turns hits "
            "into database reads under load."
        )
    out.append("")
    return out
