-- report.lua is shared by every scenario script (require "report"; the harness points
-- LUA_PATH at this directory). Each thread counts status classes and X-Cache values in
-- response(); done() adds the threads' counts to wrk's summary and prints one line:
-- "PLAZABENCH " followed by a JSON object, latencies in microseconds. A script that reads
-- bodies calls fail() for an answer whose status says success but whose body does not.
local M = {}

local threads = {}

-- counts is a global so that done() can read it from each thread with thread:get.
counts = { s2 = 0, s3 = 0, s4 = 0, s5 = 0, failed = 0, hit = 0, miss = 0, first_bad = 0 }

function M.setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function M.response(status, headers, body)
  if status >= 500 then
    counts.s5 = counts.s5 + 1
  elseif status >= 400 then
    counts.s4 = counts.s4 + 1
  elseif status >= 300 then
    counts.s3 = counts.s3 + 1
  else
    counts.s2 = counts.s2 + 1
  end
  if status >= 400 and counts.first_bad == 0 then
    counts.first_bad = status
  end
  local xc = headers["X-Cache"]
  if xc == "HIT" then
    counts.hit = counts.hit + 1
  elseif xc == "MISS" then
    counts.miss = counts.miss + 1
  end
end

function M.fail()
  counts.failed = counts.failed + 1
end

function M.done(summary, latency, requests)
  local c = { s2 = 0, s3 = 0, s4 = 0, s5 = 0, failed = 0, hit = 0, miss = 0, first_bad = 0 }
  for _, t in ipairs(threads) do
    local tc = t:get("counts")
    for k, v in pairs(tc) do
      if k == "first_bad" then
        if c.first_bad == 0 then c.first_bad = v end
      else
        c[k] = c[k] + v
      end
    end
  end
  local e = summary.errors
  io.write(string.format(
    'PLAZABENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"status":{"2xx":%d,"3xx":%d,"4xx":%d,"5xx":%d,"failed":%d,"first_bad":%d},' ..
    '"cache":{"hit":%d,"miss":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    c.s2, c.s3, c.s4, c.s5, c.failed, c.first_bad,
    c.hit, c.miss,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end

-- headers returns a copy of the command line's -H headers plus extra: wrk.format uses
-- either its argument or wrk.headers, never both.
function M.headers(extra)
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

return M
