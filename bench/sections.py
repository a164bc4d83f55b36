"""Sections of bench/RESULTS.md: CPU per hit against plain django-redis,
Redis across a network, the invalidation journal's figures and the hand-written logins section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .figures import cpu_ms, fmt_cpu, fmt_ms, p50

LOGINS = Path(__file__).with_name("LOGINS.md")


def hit_cpu(results: dict) -> list[str]:
    probe = results.get("hit_cpu")
    if not probe:
        return []
    figures, pairs = probe["figures"], probe["pairs"]
    floor = figures["floor"]["us"]
    out = [
        "## CPU per hit: the layer against plain django-redis (issue 15)",
        "",
        f"In this process, each request handed straight to Django's WSGI handler as gunicorn hands it (no HTTP, no "
        f"test client), against the cached server's Redis; {probe['rounds']} interleaved rounds of "
        f"{probe['requests']:,} requests per variant ({probe['rounds'] * probe['requests']:,} each), each round "
        "starting with the next variant in turn, CPU from `time.process_time`. The figure is the total CPU over all "
        "requests, the ratio one variant's total over the other's; *parts* splits the run into eight consecutive "
        "parts to show how much the machine's other load moved it. *Round trips*: socket writes to Redis per "
        "request.",
        "",
        "| variant | request | CPU µs per request | parts (µs) | x floor | round trips | answer bytes |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for f in figures.values():
        rounds = ", ".join(f"{us:.0f}" for us in f["rounds_us"])
        out.append(
            f"| {f['label']} | `GET {f['path']}` | {f['us']:.0f} | {rounds} | {f['us'] / floor:.2f}x "
            f"| {f['round_trips']:g} | {f['body_bytes']:,} |"
        )
    out.append("")
    for layer, pair in pairs.items():
        a, b = figures[layer], figures[pair["plain"]]
        out.append(
            f"- **{a['label']}**: {pair['ratio']:.3f}x the plain view's CPU ({a['us'] - b['us']:+.0f} µs per "
            f"request; per part {', '.join(f'{r:.2f}' for r in pair['round_ratios'])}); answers "
            + ("byte for byte the same." if pair["same_bytes"] else "**differ** (a bug in the plain view).")
        )
    out += [
        "",
        "The plain views (bench/views.py) are what django-redis alone does for the same answer: DRF with no "
        "authentication class, the token's SHA-256 from the `Authorization` header, **one** `cache.get_many` "
        "(one MGET) on the endpoint's alias through the same signed serializer "
        "(techbirdsfly.cache.serializers.SafeJSONSerializer: HMAC check and orjson for every value found) of the "
        "same four keys the layer reads for that hit -- the token's record and its generation, the entry and its "
        "scope's generation (`/me`: the user id comes from `?uid=`, where the layer reads it from the record inside "
        "Redis) -- then a check that the record has not expired and names that user (`/me`) or the account's owner "
        'or staff (summary), and the same `{"fromCache": true, "data": ...}` rendered by DRF. They leave out '
        "the layer's own work: the authentication class and the `User` built from the record, the read-ahead, "
        "the checks of each entry (its key, signed expiry, generation, journal floor), the request budget and "
        "the breaker, single flight, early refresh and the hit counters.",
        "",
    ]
    return out


def network(results: dict, slack_ms: float) -> list[str]:
    net = results.get("network")
    if not net:
        return []
    rtt = net["round_trip_ms"]
    out = [
        f"## Redis across a network: +{net['delay_ms']:g} ms a round trip (issue 15)",
        "",
        f"A server like *cached* whose Redis is reached through faults/proxy.py's relay (in the benchmark's "
        f"process, a thread per connection), which waits {net['delay_ms']:g} ms before passing each chunk on "
        f"towards Redis. One PING over a raw socket takes {rtt:.3f} ms through the relay (p50), "
        f"{net['loopback_round_trip_ms']:.3f} ms straight to Redis. Floor and cached on that server, uncached on "
        "the bypassed server (which sends Redis nothing on these endpoints), in alternating rounds as above. "
        "*Plain* is the same server answering the same bytes through plain django-redis (bench/views.py: one "
        "`get_many`, one round trip through the same relay): what a hit costs there whoever reads Redis. The "
        "relay's own CPU (*relay CPU*) is spent on the same CPUs as everything else: a real network would not "
        "take it from the servers.",
        "",
        "| endpoint | clients | floor p50 ms | cached p50 ms | plain p50 ms | uncached p50 ms | cached - floor "
        f"| target: ≤ round trip + {slack_ms:g} ms | cached req/s | hits | floor app CPU ms/req "
        "| cached app CPU ms/req | plain app CPU ms/req | relay CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in net["endpoints"].values():
        for suffix in ("_1", ""):
            floor, cached, bypass = row["floor" + suffix], row["cached" + suffix], row["bypass" + suffix]
            plain = row.get("plain" + suffix)
            rps = cached["requests"] / cached["seconds"] if cached["seconds"] else 0.0
            out.append(
                f"| {row['label']} | {cached['connections']} | {fmt_ms(p50(floor))} | {fmt_ms(p50(cached))} "
                f"| {fmt_ms(p50(plain)) if plain else '-'} | {fmt_ms(p50(bypass))} | {p50(cached) - p50(floor):.2f} "
                f"| {rtt + slack_ms:.2f} | {rps:,.0f} | {cached['from_cache']:,}/{cached['requests']:,} "
                f"| {fmt_cpu(floor)} | {fmt_cpu(cached)} | {fmt_cpu(plain) if plain else '-'} "
                f"| {fmt_cpu(cached, 'relay')} |"
            )
    out.append("")
    loaded, clients = [], 0
    for row in net["endpoints"].values():
        clients = row["cached"]["connections"]
        floor, cached = row["floor"], row["cached"]
        if p50(floor) and cpu_ms(floor):
            loaded.append(
                f"beside {row['label']}, floor p50 {fmt_ms(p50(floor))} ms and cached {fmt_ms(p50(cached))} ms for "
                f"{cpu_ms(cached) / cpu_ms(floor):.2f}x the floor's app CPU per request (plus "
                f"{fmt_cpu(cached, 'relay')} ms of the relay's)"
            )
    if loaded:
        out += [
            "The target (*Targets*) is the 1-client rows: what one round trip to a Redis "
            f"{net['delay_ms']:g} ms away adds to a request. With {clients} clients on this machine's CPUs a "
            "p50 is mostly the wait for a CPU behind the requests queued ahead: it follows the CPU each request "
            "costs (the server's, and here the relay's, which shares the same CPUs) and the machine's other "
            f"load from one round to the next, not Redis's distance: {'; '.join(loaded)}.",
            "",
        ]
    return out


def journal(results: dict) -> list[str]:
    figures = results.get("journal")
    if not figures:
        return []
    return [
        "## Invalidation journal (issue 13)",
        "",
        f"`{figures['command']}`, run by `bench.run` as its last step ({figures['seconds']:.0f} s; a redis-server of "
        f"its own and database `{figures['database']}`, with no other step running). Its figures, as it printed them:",
        "",
        *(f"- {line}" for line in figures["lines"]),
        "",
        "*A committed UPDATE*: one write with its invalidation, with the journal row (issue 13) against writing "
        "only the Redis generation as before; *hit CPU*: `get_or_compute` hits of a scoped entry against a plain "
        "`get_many` of the same two keys; *catch-up*: what a process does before its first read.",
        "",
        "The hit before and after the journal and the key binding, measured by hand on 2026-11-30 with one script "
        "in both trees, alternating, 30 rounds of 300 hits each: a scoped `get_or_compute` hit cost 1.36-1.46x a "
        "plain `get_many` of the same keys in the layer of fcb1d4a (before), 1.11-1.22x in that of 2d10120 "
        "(after; three runs each). The checks the journal adds (key, expiry, journal floor) cost less than what "
        "the read path shed (django-redis's `get_many` and its decoding, replaced by one raw MGET).",
        "",
    ]


def tokencpu(results: dict) -> list[str]:
    figures = results.get("tokencpu")
    if not figures:
        return []
    return [
        "## Made-up bearer tokens (issue 21)",
        "",
        f"`{figures['command']}`, run by `bench.run` ({figures['seconds']:.0f} s; a redis-server of its own and "
        "its own database). CPU per request answered 401, each request handed straight to Django's WSGI handler, "
        "variants in interleaved rounds; a made-up token is a fresh one each request, made before the clock starts. "
        "*x no token*: against the same endpoint refused for having no token at all. *Looked up (as before)*: "
        "a made-up token of the old shape while tokens without a MAC can still be live, i.e. what every made-up "
        "token cost before tokens carried a MAC. Its table, as it printed it:",
        "",
        *figures["lines"],
        "",
    ]


def logins() -> list[str]:
    """bench/LOGINS.md as it is: figures of ``python -m bench.login_flood``, recorded by hand."""
    if not LOGINS.exists():
        return []
    return [LOGINS.read_text().rstrip(), ""]


def why_missed(results: dict, cpu_factor: float, slack_ms: float) -> list[str]:
    """Why the CPU, network, stampede-write and budget targets are missed, in this run's figures."""
    out: list[str] = []
    probe = results.get("hit_cpu")
    if probe:
        missed = [(layer, pair) for layer, pair in probe["pairs"].items() if pair["ratio"] > cpu_factor]
        if missed:
            f = probe["figures"]
            parts = [
                f"{f[layer]['label']} costs {f[layer]['us']:.0f} µs against {f[pair['plain']]['us']:.0f} µs plain "
                f"({f[layer]['us'] - f[pair['plain']]['us']:+.0f} µs; {cpu_factor}x would allow "
                f"{f[pair['plain']]['us'] * cpu_factor:.0f})"
                for layer, pair in missed
            ]
            out += [
                f"### Why the layer's CPU misses {cpu_factor}x plain django-redis",
                "",
                "; ".join(parts) + ". Both sides send one round trip and decode the same four values with the same "
                "serializer, so the difference is the layer's Python around them (see *CPU per hit* for what the "
                "plain view leaves out).",
                "",
            ]
    net = results.get("network")
    if net:
        rtt = net["round_trip_ms"]
        lines = []
        for row in net["endpoints"].values():
            for suffix, how in (("_1", "1 client"),):  # the target's rows (checks.network_checks)
                floor, cached = p50(row["floor" + suffix]), p50(row["cached" + suffix])
                if cached > floor + rtt + slack_ms:
                    extra = cpu_ms(row["cached" + suffix]) - cpu_ms(row["floor" + suffix])
                    line = (
                        f"{row['label']} ({how}): cached p50 {fmt_ms(cached)} ms is {cached - floor:.2f} ms over the "
                        f"floor's {fmt_ms(floor)} ms, against {rtt:.2f} ms for one round trip + {slack_ms} ms; the "
                        f"server's workers spent {extra:.2f} ms more CPU per request on the hit than on the floor"
                    )
                    plain = row.get("plain" + suffix)
                    if plain:
                        plain_extra = cpu_ms(plain) - cpu_ms(row["floor" + suffix])
                        line += (
                            f", and plain django-redis answering the same bytes in one round trip "
                            f"{fmt_ms(p50(plain))} ms ({p50(plain) - floor:.2f} over the floor; {plain_extra:.2f} ms "
                            "more CPU)"
                        )
                    lines.append(line)
        if lines:
            out += [
                "### Why the network target is missed",
                "",
                "; ".join(lines) + f". With one client the {slack_ms} ms allows a hit at most that much CPU over "
                "the floor's besides its round trip; the workers' CPU per request above says how much more it "
                "takes (the relay's own CPU, in the benchmark's process, is not in it).",
                "",
            ]
    bursts = [b for b in results["stampede"]["bursts"] if b.get("writes", 1) != 1]
    if bursts:

        def cause(b: dict) -> str:
            if b["writes"] > b["computes"]:
                return "more writes than computes: one fill stored the entry more than once"
            if b["writes"] == b["computes"]:
                return "one write per compute: the burst was computed more than once"
            return "fewer writes than computes: a compute's value was not stored"

        out += [
            "### Why a burst did not write its entry exactly once",
            "",
            "; ".join(f"{b['endpoint']}: {b['writes']} SET(s), {b['computes']} compute(s) ({cause(b)})" for b in bursts)
            + ". Not established further by this run.",
            "",
        ]
    return out


def burst_writes(burst: dict[str, Any]) -> str:
    return str(burst["writes"]) if "writes" in burst else "-"
