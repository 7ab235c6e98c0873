-- ids.lua: GET /api/products/{id}, a different id on every request.
-- Arguments: the file of ids (one a line), the number of wrk threads and a start offset
-- (default 0). Each thread starts at its own place in the list (offset plus its share) and
-- walks it in order, so an id comes back only after every other id has been asked for: with
-- a cache smaller than the list, every read misses.
local report = require "report"
setup, response, done = report.setup, report.response, report.done

local ids, n, i

function init(args)
  ids = {}
  for line in io.lines(args[1]) do
    if line ~= "" then ids[#ids + 1] = line end
  end
  n = #ids
  assert(n > 0, "ids.lua: no ids in " .. tostring(args[1]))
  local threads = tonumber(args[2]) or 1
  local offset = tonumber(args[3]) or 0
  i = (math.floor(n * thread_index / threads) + offset) % n
end

function request()
  i = i % n + 1
  return wrk.format("GET", "/api/products/" .. ids[i])
end
