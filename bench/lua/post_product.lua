-- post_product.lua: POST /api/products with a new name every time. The admin's bearer token
-- comes in with -H. Argument: a nonce that makes this run's names unique.
local report = require "report"
setup, response, done = report.setup, report.response, report.done

local nonce, seq, headers

function init(args)
  nonce = args[1] or "run"
  seq = 0
  headers = report.headers({ ["Content-Type"] = "application/json" })
end

function request()
  seq = seq + 1
  local body = string.format(
    '{"name":"Bench product %s-%d-%d","description":"Created by the bench harness.",' ..
    '"price_cents":%d,"currency":"USD","category":"bench","subcategory":"load/post","stock":%d}',
    nonce, thread_index, seq, 1000 + seq % 9000, seq % 50)
  return wrk.format("POST", "/api/products", headers, body)
end
