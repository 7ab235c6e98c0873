-- ids.lua: GET /api/products/{id}, a different id on every request.
-- Arguments: the file of ids (one a line), the number of wrk threads and a start position
-- (default 0). The threads deal the list between them: thread t reads ids t, t+T, t+2T, …
-- from the start position on, so no two threads read the same id and an id comes back only
-- after every other id has been read, whatever the threads' relative speed. The harness
-- runs it against servers with PLAZA_PRODUCT_CACHE=off, so every read queries the database.
local report = require "report"
setup, response, done = report.setup, report.response, report.done

local ids, n, threads, k

function init(args)
  ids = {}
  for line in io.lines(args[1]) do
    if line ~= "" then ids[#ids + 1] = line end
  end
  n = #ids
  assert(n > 0, "ids.lua: no ids in " .. tostring(args[1]))
  threads = tonumber(args[2]) or 1
  k = tonumber(args[3]) or 0
end

function request()
  local i = (thread_index + threads * k) % n
  k = k + 1
  return wrk.format("GET", "/api/products/" .. ids[i + 1])
end
