-- graphql.lua: POST /graphql with one body, the argument (the harness writes the query and
-- its variables). The request never changes, so it is set once in init and wrk sends it as
-- built, as it sends get.lua's: a request() function would have wrk call Lua and format
-- the request again for every one, client work the other fixed-request scenarios do not
-- pay. GraphQL answers a failed query with 200 and an "errors" entry, so each answer's body
-- is read: one with errors counts as failed, whatever its status.
local report = require "report"
setup, done = report.setup, report.done

function init(args)
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.body = args[1]
  wrk.headers["Content-Type"] = "application/json"
end

function response(status, hdrs, resp)
  report.response(status, hdrs, resp)
  if status < 400 and (resp == nil or resp:find('"errors"', 1, true)) then
    report.fail()
  end
end
