-- wrk script for the website collector: POST /e with a unique nonce per event, so every
-- accepted event has its own id; prints a machine-readable summary line at the end.
-- Environment: RIPPLE_BATCH (events per request, default 1), RIPPLE_ORIGIN.
local batch = tonumber(os.getenv("RIPPLE_BATCH") or "1")
local origin = os.getenv("RIPPLE_ORIGIN") or "https://www.acme.com"
local run = os.getenv("RIPPLE_RUN") or tostring(os.time())
local threads = {}
local counter = 0
prefix = run -- global: setup() gives each thread its own

function setup(thread)
  thread:set("prefix", run .. "t" .. #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time())
end

local template = '{"kind":"pageview","site":"acme.com","url":"https://acme.com/p/%d",'
  .. '"referrer":"https://bsky.app/profile/x","utm":{"source":"bsky","medium":"social"},'
  .. '"session":"%s-%d","nonce":"%s-%d"}'

function request()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    parts[i] = string.format(template, counter % 1000, prefix, counter % 5000, prefix, counter)
  end
  local body = parts[1]
  if batch > 1 then body = "[" .. table.concat(parts, ",") .. "]" end
  return wrk.format("POST", "/e", { ["Content-Type"] = "text/plain;charset=UTF-8", ["Origin"] = origin }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RIPPLE requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d batch=%d\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, batch))
end
