-- graphql.lua: POST /graphql with one body, the argument (the harness writes the query and
-- its variables). GraphQL answers a failed query with 200 and an "errors" entry, so each
-- answer's body is read: one with errors counts as failed, whatever its status.
local report = require "report"
setup, done = report.setup, report.done

local body, headers

function init(args)
  body = args[1]
  headers = report.headers({ ["Content-Type"] = "application/json" })
end

function request()
  return wrk.format("POST", "/graphql", headers, body)
end

function response(status, hdrs, resp)
  report.response(status, hdrs, resp)
  if status < 400 and (resp == nil or resp:find('"errors"', 1, true)) then
    report.fail()
  end
end
