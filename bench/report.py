"""bench/RESULTS.md from the figures of one run, with a verdict on each target."""

from __future__ import annotations

from . import sections
from .analysis import analysis
from .checks import (
    CPU_FACTOR,
    NETWORK_SLACK_MS,
    _commands_per_request,
    target_checks,
)
from .choices import choices
from .figures import cpu_ms, failed, fmt_cpu, fmt_ms, fmt_ok, fmt_x, p50, p99, rps


def render(results: dict) -> str:
    m = results["machine"]
    plan = results["plan"]
    fx = results["fixtures"]
    lines: list[str] = []
    add = lines.append
    smoke = plan["smoke"]
    add("# Benchmark results" + (" (SMOKE RUN: tiny data, figures mean nothing)" if smoke else ""))
    add("")
    add(f"Written by `{results['command']}` (`make bench`) on {m['date']}, commit `{m['commit']}`. ")
    add("Rerun it to replace this file; see bench/run.py for what each step does.")
    add("")
    add("## Machine and setup")
    add("")
    add(
        f"- **Machine:** {m['nproc']} CPUs ({m['usable_cpus']} usable), {m['cpu']}, {m['ram_gib']} GiB RAM, "
        f"Linux {m['kernel']}."
    )
    add(
        f"- **Load on the machine:** loadavg {' / '.join(map(str, m['loadavg_before']))} (1/5/15 min) before the run, "
        f"{' / '.join(map(str, m['loadavg_after']))} after. The machine is shared: other work ran beside the "
        "benchmark, and wrk, gunicorn, PostgreSQL and Redis all share these CPUs."
    )
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    add(
        f"- **Versions:** Python {m['python']}, {pkgs}; PostgreSQL {m['postgresql']}, "
        f"Redis {m['redis_server']}, {m['wrk']}."
    )
    add(
        f"- **Data** (database `{m['database']}`, {results['seeding']}): {fx['users']:,} users, "
        f"{fx['accounts']:,} accounts, {fx['usage_records']:,} usage records, {fx['images']:,} images. "
        f"Largest account: #{fx['largest_account']} with "
        f"{fx['largest_records']:,} records; typical (median) account: #{fx['typical_account']} with "
        f"{fx['typical_records']:,}. Large accounts: "
        + ", ".join(f"#{a} ({n:,})" for a, n in fx["large_accounts"])
        + f". Newest usage record: {fx['newest_usage']}."
    )
    add(
        f"- **Servers:** {results['servers']['main']} (infra/gunicorn.conf.py defaults for this machine), "
        "serving `bench.wsgi` on loopback, each with a redis-server of its own. *Cached*: the app as it is. "
        "*Bypassed*: the same app with `BENCH_CACHE_BYPASS=1`, which replaces `get_or_compute` by a plain "
        "`compute()` (bench/bypass.py) -- every read, token validation included, goes to PostgreSQL and none to Redis "
        f"(the bypassed server's Redis saw: {results['bypass_redis_commands'] or 'no commands'})."
    )
    add(
        f"- **Load:** wrk, closed loop, keep-alive, {plan['connections']} connections, one token per endpoint (a hot "
        f"key). Per endpoint, {plan['rounds']} rounds of [floor, cached, bypassed] for {plan['seconds']} s each, then "
        f"{plan['single_rounds']} rounds of the same with 1 connection for {plan['single_seconds']} s each; requests/s "
        "are over all rounds, percentiles the median round's. Alternating rounds spread the machine's other load over "
        "all three alike. The **floor** is `GET /bench/floor`: a DRF view behind the same middleware that touches "
        "neither Redis nor the database."
    )
    add(
        "- **CPU per request** is the user + system CPU time that the server's gunicorn workers, its redis-server and "
        "the database's PostgreSQL backends spent during the runs (from /proc and INFO cpu), divided by the requests "
        "served: unlike requests/s it hardly moves with other load on the machine."
    )
    add("")
    add("## Targets (issues 7 and 15)")
    add("")
    add("| target | this run | verdict |")
    add("|---|---|---|")
    for target, figure, met, detail in target_checks(results):
        add(f"| {target} | {figure} ({detail}) | {fmt_ok(met)} |")
    add("")
    lines.extend(analysis(results))
    lines.extend(sections.why_missed(results, CPU_FACTOR, NETWORK_SLACK_MS))
    lines.extend(sections.hit_cpu(results))
    lines.extend(sections.network(results, NETWORK_SLACK_MS))
    rows = list(results["endpoints"].values())
    add(f"## Endpoints: cached vs bypassed, {plan['connections']} concurrent clients")
    add("")
    add(
        "| endpoint | cached req/s | p50 ms | p99 ms | bypassed req/s | p50 ms | p99 ms | req/s ratio | p50 ratio "
        "| hits |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        c, b = row["cached"], row["bypass"]
        add(
            f"| {row['label']} | {rps(c):,.0f} | {fmt_ms(p50(c))} | {fmt_ms(p99(c))} | {rps(b):,.1f} "
            f"| {fmt_ms(p50(b))} "
            f"| {fmt_ms(p99(b))} | {fmt_x(rps(c) / rps(b)) if rps(b) else 'inf'} | {fmt_x(p50(b) / p50(c))} "
            f"| {c['from_cache']:,}/{c['requests']:,} |"
        )
    add("")
    add(
        "*hits*: responses of the cached runs with `fromCache: true`; the bypassed runs had "
        + ", ".join(str(row["bypass"]["from_cache"]) for row in rows)
        + ". Non-200 answers or socket errors: cached "
        + ", ".join(str(failed(row["cached"])) for row in rows)
        + "; bypassed "
        + ", ".join(str(failed(row["bypass"])) for row in rows)
        + "."
    )
    add("")
    add("## Cached endpoints vs the floor")
    add("")
    add(
        "| endpoint | floor req/s | cached req/s | % of floor | floor p50 ms | cached p50 ms | ratio "
        "| floor p50, 1 client | cached p50, 1 client | ratio | floor app CPU ms/req | cached app CPU ms/req "
        "| + Redis CPU ms/req |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        c, f = row["cached"], row["floor"]
        c1, f1 = row.get("cached_1"), row.get("floor_1")
        single = f"{fmt_ms(p50(f1))} | {fmt_ms(p50(c1))} | {p50(c1) / p50(f1):.2f}x" if c1 and f1 else "- | - | -"
        add(
            f"| {row['label']} | {rps(f):,.0f} | {rps(c):,.0f} | {rps(c) / rps(f):.0%} | {fmt_ms(p50(f))} "
            f"| {fmt_ms(p50(c))} | {p50(c) / p50(f):.2f}x | {single} | {fmt_cpu(f, 'app')} | {fmt_cpu(c, 'app')} "
            f"| {fmt_cpu(c, 'redis')} |"
        )
    add("")
    if plan["single_rounds"]:
        add("## Endpoints: unloaded latency (1 client)")
        add("")
        add("Queueing behind other requests inflates latencies under load, most of all the slow uncached ones; "
            "with one client each figure is the cost of one request.")  # fmt: skip
        add("")
        add(
            "| endpoint | cached p50 ms | p99 ms | req/s | bypassed p50 ms | p99 ms | req/s "
            "| p50 ratio (bypassed / cached) |"
        )
        add("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            c, b = row["cached_1"], row["bypass_1"]
            add(
                f"| {row['label']} | {fmt_ms(p50(c))} | {fmt_ms(p99(c))} | {rps(c):,.0f} "
                f"| {fmt_ms(p50(b))} | {fmt_ms(p99(b))} "
                f"| {rps(b):,.1f} | {fmt_x(p50(b) / p50(c))} |"
            )
        add("")
    add("## CPU per request, cached vs bypassed (under load)")
    add("")
    add("| endpoint | cached: app | Redis | PostgreSQL | total ms | bypassed: app | PostgreSQL | total ms | ratio |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        c, b = row["cached"], row["bypass"]
        ct = sum(cpu_ms(c, k) for k in ("app", "redis", "postgres"))
        bt = sum(cpu_ms(b, k) for k in ("app", "postgres"))
        add(
            f"| {row['label']} | {fmt_cpu(c, 'app')} | {fmt_cpu(c, 'redis')} | {fmt_cpu(c, 'postgres')} | {ct:.3f} "
            f"| {fmt_cpu(b, 'app')} | {fmt_cpu(b, 'postgres')} | {bt:.3f} | {fmt_x(bt / ct) if ct else '-'} |"
        )
    add("")
    add("## What a hit costs")
    add("")
    add(
        "SQL queries and Redis round trips per request, counted in-process (Django's test client against the same "
        "database and Redis; CaptureQueriesContext, and a counter on redis-py's socket writes, where a pipeline "
        "would count once), and Redis commands per request on the cached server under load "
        "(INFO commandstats delta / wrk's request count; commandstats also counts the commands a script runs: "
        "`/me`'s one EVALSHA runs two MGETs inside Redis, one round trip)."
    )
    add("")
    add("| endpoint | SQL per hit | Redis round trips per hit | Redis commands per request under load | commands |")
    add("|---|---:|---:|---:|---|")
    for row in results["endpoints"].values():
        hc = row["hit_cost"]
        commands = ", ".join(f"{k} {v:,}" for k, v in row["redis_commands"].items())
        add(
            f"| {row['label']} | {hc['sql_per_request']:g} | {hc['round_trips_per_request']:g} "
            f"| {_commands_per_request(row):.3f} | {commands} |"
        )
    add("")
    st = results["stampede"]
    add("## Stampede: a hot key expiring under concurrent load")
    add("")
    add(
        f"**Cold burst:** the key is deleted, then {st['bursts'][0]['concurrency']} requests are sent at the same "
        "instant (one connection each, released by a barrier). *Computes* is the delta of "
        "`techbirdsfly_cache_computes_total` on the server's /metrics; *SETs of the entry* counts the commands "
        "that stored the entry's own key during the burst (MONITOR on the server's Redis; the fill lock's key "
        "and the generation's are other keys)."
    )
    add("")
    add(
        "| endpoint | requests | computes | SETs of the entry | misses counted | answered from cache | statuses "
        "| p50 ms | max ms |"
    )
    add("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for b in st["bursts"]:
        add(
            f"| {b['endpoint']} | {b['concurrency']} | {b['computes']} | {sections.burst_writes(b)} | {b['misses']} "
            f"| {b['from_cache']} "
            f"| {', '.join(map(str, b['statuses']))} | {fmt_ms(b['p50_ms'])} | {fmt_ms(b['max_ms'])} |"
        )
    add("")
    add(
        f"**Under load:** the admin dashboard, {plan['stampede_connections']} wrk connections for "
        f"{plan['stampede_seconds']} s each."
    )
    add("")
    add(
        "| run | req/s | p50 ms | p90 ms | p99 ms | max ms | recomputations | answers not from cache "
        "| cache errors counted |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in st["load"].values():
        add(
            f"| {r['description']} | {rps(r):,.0f} | {fmt_ms(p50(r))} | {fmt_ms(r['latency_ms']['p90'])} "
            f"| {fmt_ms(p99(r))} "
            f"| {fmt_ms(r['latency_ms']['max'])} | {r['extra']['computes']} | {r['requests'] - r['from_cache']} "
            f"| {r['extra'].get('cache_errors', '-')} |"
        )
    add("")
    add(
        "*Answers not from cache* beyond the recomputations are requests that went to the database without "
        "filling the cache: the layer skips Redis when the breaker is open or when the request has spent its Redis "
        "time budget (CACHE_REQUEST_BUDGET: the time Redis takes to answer, as the kernel times it, not the time a "
        "thread waits for a CPU); *cache errors counted* is the delta of `techbirdsfly_cache_errors_total`, which "
        "counts those skips."
    )
    add("")
    codecs = results["codecs"]
    add("## Serializers")
    add("")
    add(
        "Store + read of one cache entry (`dumps` + `loads`), µs, best of several timeit rounds in one process. "
        "The entries are the real ones from this run's Redis (envelope with value, generation, expiry, compute time). "
        "*+ HMAC*: signed and verified exactly like the production serializer (techbirdsfly/cache/serializers.py), "
        "on a first read (`verify_and_parse`): the production `loads` answers a small value it has verified before "
        "from memory, without the HMAC."
    )
    add("")
    payloads = list(dict.fromkeys(c["payload"] for c in codecs["codecs"]))
    names = list(dict.fromkeys(c["codec"] for c in codecs["codecs"]))
    add("| codec | " + " | ".join(payloads) + " |")
    add("|---|" + "---:|" * len(payloads))
    by = {(c["codec"], c["payload"]): c for c in codecs["codecs"]}
    for name in names:
        cells = [f"{by[(name, p)]['total_us']:.1f} µs, {by[(name, p)]['bytes']:,} B" for p in payloads]
        add(f"| {name} | " + " | ".join(cells) + " |")
    add("")
    add(
        "Cost of the HMAC signature alone (sign once + verify once): "
        + ", ".join(f"{name} {us:.1f} µs" for name, us in codecs["hmac_us"].items())
        + "."
    )
    add("")
    add("## Redis client: hiredis")
    add("")
    add("| parser | operation | µs per call |")
    add("|---|---|---:|")
    for p in codecs["parsers"]:
        add(f"| {p['parser']} | {p['operation']} | {p['us_per_call']:.1f} |")
    add("")
    add("## Server and client options, whole stack")
    add("")
    add(
        f"Each variant is a gunicorn + redis-server of its own, all started together and then measured in "
        f"{plan['option_rounds']} alternating rounds of wrk with {plan['connections']} connections for "
        f"{plan['option_seconds']} s per endpoint. The baseline is measured the same way in the same rounds: compare "
        "the variants with it rather than with the tables above."
    )
    if results.get("variants_rerun"):
        add("")
        add(f"This part was rerun alone: {results['variants_rerun']}.")
    add("")
    targets = list(next(iter(results["variants"].values()))["runs"])
    header = " | ".join(f"{t} req/s | p50 ms | p99 ms | app CPU ms/req | Redis CPU ms/req | hits" for t in targets)
    add(f"| variant | server | {header} |")
    add("|---|---|" + "---:|" * (6 * len(targets)))
    for name, row in results["variants"].items():
        cells = []
        for t in targets:
            r = row["runs"][t]
            cells += [f"{rps(r):,.0f}", fmt_ms(p50(r)), fmt_ms(p99(r)), fmt_cpu(r, "app"), fmt_cpu(r, "redis")]
            cells.append(f"{r['from_cache'] / r['requests']:.0%}" if r["requests"] else "-")
        add(f"| {name}: {row['description']} | {row['server']} | " + " | ".join(cells) + " |")
    add("")
    lines.extend(choices(results))
    lines.extend(sections.journal(results))
    lines.extend(sections.tokencpu(results))
    lines.extend(sections.logins())
    return "\n".join(lines).rstrip() + "\n"
