-- wrk script for csr-webhook benchmarks (bench/run.py writes the corpus and runs wrk).
--   wrk -t1 -c8 -d10s -s bench/wrk.lua https://127.0.0.1:8443 -- REVIEWS.jsonl [PATH]
-- Cycles through the AdmissionReview bodies in REVIEWS.jsonl (one JSON body per line), each
-- thread from its own offset; counts answers that are not `"allowed":true` (a denial, an
-- error body) and prints one machine-readable summary line starting with BENCH_JSON.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local bodies = {}
local counter = 0
local path = "/validate?timeout=10s"
local headers = { ["Content-Type"] = "application/json" }
not_allowed = 0

function init(args)
  local file = args[1] or error("usage: wrk ... -s wrk.lua URL -- REVIEWS.jsonl [PATH]")
  for line in io.lines(file) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  if #bodies == 0 then
    error("no review bodies in " .. file)
  end
  if args[2] then
    path = args[2]
  end
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, bodies[(counter % #bodies) + 1])
end

function response(status, _, body)
  if status ~= 200 or not string.find(body, '"allowed":%s*true') then
    not_allowed = not_allowed + 1
  end
end

function done(summary, latency, _)
  local refused = 0
  for _, thread in ipairs(threads) do
    refused = refused + (thread:get("not_allowed") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"not_allowed":%d,"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    refused, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
