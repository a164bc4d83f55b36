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
  client_errors = 0
  server_errors = 0
  from_cache = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
    if status >= 500 then
      server_errors = server_errors + 1
    elseif status >= 400 then
      client_errors = client_errors + 1
    end
  end
  -- DRF renders compact JSON, so a hit always contains exactly this.
  if body and string.find(body, '"fromCache":true', 1, true) then
    from_cache = from_cache + 1
  end
end

function done(summary, latency, requests)
  local bad, hits, c4, c5 = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_ok")
    hits = hits + thread:get("from_cache")
    c4 = c4 + thread:get("client_errors")
    c5 = c5 + thread:get("server_errors")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"not_ok":%d,"status_4xx":%d,"status_5xx":%d,"from_cache":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, bad, c4, c5, hits,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
