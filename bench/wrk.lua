-- One benchmark endpoint for wrk; bench/load.py passes the request in the environment.
-- Prints one line "BENCH_JSON {...}" with the counts and latency percentiles (microseconds).
local method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = method
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if method ~= "GET" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = os.getenv("BENCH_BODY") or "{}"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_ok = 0
  from_cache = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
  -- DRF renders compact JSON, so a hit always contains exactly this.
  if body and string.find(body, '"fromCache":true', 1, true) then
    from_cache = from_cache + 1
  end
end

function done(summary, latency, requests)
  local bad, hits = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_ok")
    hits = hits + thread:get("from_cache")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"not_ok":%d,"from_cache":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, bad, hits,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
