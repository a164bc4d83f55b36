"""Why an endpoint is as fast as it is: the paragraphs of analysis under the report's tables."""

from __future__ import annotations

from .checks import (
    CLIFF_FACTOR,
    FLOOR_P50_FACTOR,
    SPEEDUP,
    _speedup_runs,
)
from .figures import cpu_ms, fmt_ms, p50, p99

_SLOW_BECAUSE = {
    "summary_largest": "The uncached summary is not slow to begin with: its two aggregates are index-only scans of "
    "the account's rows (seed_demo vacuums after seeding).",
    "dashboard": "The uncached dashboard runs one aggregate query per table over the whole data set.",
}


def analysis(results: dict) -> list[str]:
    """Why each missed target is missed, in this run's own figures."""
    rows = results["endpoints"]
    out: list[str] = []
    missed_floor = [row for row in rows.values() if p50(row["cached"]) > FLOOR_P50_FACTOR * p50(row["floor"])]
    if missed_floor:
        floor_cpu = sorted(cpu_ms(row["floor"], "app") for row in rows.values())
        cached_cpu = sorted(cpu_ms(row["cached"], "app") + cpu_ms(row["cached"], "redis") for row in rows.values())
        parsers = results["codecs"]["parsers"]
        mget = next((p["us_per_call"] for p in parsers if p["parser"] == "hiredis" and "MGET" in p["operation"]), None)
        plain = ""
        probe = results.get("hit_cpu")
        if probe:
            f = probe["figures"]
            plain = (
                f" Measured side by side in one process (*CPU per hit* below), the floor costs {f['floor']['us']:.0f} "
                f"µs, plain django-redis answering `/me`'s bytes in one MGET {f['plain_me']['us']:.0f} µs "
                f"({f['plain_me']['us'] / f['floor']['us']:.2f}x the floor) and the layer's `/me` "
                f"{f['me']['us']:.0f} µs ({f['me']['us'] / f['floor']['us']:.2f}x): even with no layer at all a "
                "hit costs well over the floor."
            )
        out += [
            "### Why the floor's p50 target is missed",
            "",
            f"{len(missed_floor)} of {len(rows)} cached endpoints have a p50 over {FLOOR_P50_FACTOR}x the floor's "
            f"under load (see the table). The machine runs the load generator, both gunicorn servers, Redis and "
            f"PostgreSQL on {results['machine']['usable_cpus']} shared CPUs, so under load a request's p50 is mostly "
            "its wait for a CPU, which grows with the CPU time per request, and the floor does far less work than "
            f"any authenticated read: the floor's workers spent {floor_cpu[len(floor_cpu) // 2]:.3f} ms of CPU per "
            f"request (median over the endpoints' rounds), a cached endpoint's workers plus Redis "
            f"{cached_cpu[len(cached_cpu) // 2]:.3f} ms. On top of the floor a hit hashes the token (SHA-256), "
            "sends one MGET (or one EVALSHA) for the token's record and the data, checks two signatures and decodes "
            "two entries, builds the user from the record and renders a larger answer"
            + (
                f"; one MGET round trip over TCP loopback alone takes {mget:.0f} µs here (redis-py + hiredis, "
                "in-process, see *Redis client*), most of it in the kernel's socket calls"
                if mget
                else ""
            )
            + "."
            + plain,
            "",
        ]
    for name, wanted in SPEEDUP.items():
        row = rows[name]
        cached, bypass, how = _speedup_runs(row)
        floor = row.get("floor_1") if how == "1 client" else row["floor"]
        ratio = p50(bypass) / p50(cached) if p50(cached) else 0.0
        if ratio >= wanted or floor is None:
            continue
        cap = p50(bypass) / p50(floor) if p50(floor) else 0.0
        out += [
            f"### Why {row['label']} misses {wanted}x",
            "",
            f"Uncached: {fmt_ms(p50(bypass))} ms (p50, {how}). Cached: {fmt_ms(p50(cached))} ms, of which "
            f"{fmt_ms(p50(floor))} ms is the floor (HTTP, gunicorn, Django and DRF, no Redis, no SQL). "
            "No cache takes a "
            f"request below the floor, so the ratio cannot exceed {fmt_ms(p50(bypass))} / {fmt_ms(p50(floor))} = "
            f"{cap:.0f}x here; what the hit adds on top of the floor is {p50(cached) - p50(floor):.2f} ms. "
            + _SLOW_BECAUSE.get(name, ""),
            "",
        ]
    load = results["stampede"]["load"]
    expiry, steady = load.get("expiry"), load.get("steady")
    if expiry and steady and p99(expiry) > CLIFF_FACTOR * p99(steady):
        deleted = load.get("deleted")
        dashboard = rows.get("dashboard", {}).get("bypass")
        compute = (
            f" One uncached dashboard costs {sum(cpu_ms(dashboard, k) for k in ('app', 'postgres')):.0f} ms of CPU "
            "(workers + PostgreSQL, *CPU per request* above) on these shared CPUs."
            if dashboard
            else ""
        )
        out += [
            "### Why the natural expiry's p99 is over the steady run's",
            "",
            f"p99 {fmt_ms(p99(expiry))} ms across the expiry against {fmt_ms(p99(steady))} ms steady "
            f"({p99(expiry) / p99(steady):.2f}x; max {fmt_ms(expiry['latency_ms']['max'])} vs "
            f"{fmt_ms(steady['latency_ms']['max'])} ms), with {expiry['extra']['computes']} recomputation, "
            f"{expiry['extra']['misses']} miss(es) and {expiry['extra'].get('cache_errors', 0)} request(s) that "
            "skipped Redis"
            + (f"; the run where the key is deleted outright had p99 {fmt_ms(p99(deleted))} ms" if deleted else "")
            + f".{compute} The refresh runs while the other requests are still served the old entry, so what "
            "it adds to everyone's tail is the CPU it takes from them; this run does not separate that from the "
            "machine's other load, which moved between the 20-second runs (loadavg in *Machine and setup*).",
            "",
        ]
    if expiry and expiry["extra"]["computes"] > 1:
        computes, misses = expiry["extra"]["computes"], expiry["extra"]["misses"]
        out += ["### Why the natural expiry was computed more than once", ""]
        if misses:
            out.append(
                f"{computes} recomputations and {misses} miss(es) across the expiry (bursts on a missing key: one "
                "compute each). A miss means the entry's Redis TTL ran out before the early refresh had stored its "
                "new value (under this load a compute takes longer than the `d` recorded in the entry). A request "
                "that misses while the refresh holds the fill lock waits for it, and once the lock has been held for "
                "FILL_TAKEOVER (0.45 s, techbirdsfly/cache/layer.py) one waiter takes the fill over and computes "
                "again. Not established further by this run."
            )
        else:
            out.append(
                f"{computes} recomputations and no miss across the expiry (bursts on a missing key: one compute "
                "each). Every recomputation came from the early-refresh path of `get_or_compute`, which takes the "
                "fill lock after deciding to refresh from the entry it read: a request that read the old entry "
                "before the refresher stored the new one, and asks for the lock after the refresher let it go, "
                "refreshes again. Re-reading the entry once the lock is held would close that window."
            )
        out.append("")
    return out
