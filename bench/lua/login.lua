-- login.lua: POST /api/auth/login with one user's email and password (the arguments), so
-- every request pays for one argon2id verification.
local report = require "report"
setup, response, done = report.setup, report.response, report.done

local body, headers

function init(args)
  body = string.format('{"email":"%s","password":"%s"}', args[1], args[2])
  headers = report.headers({ ["Content-Type"] = "application/json" })
end

function request()
  return wrk.format("POST", "/api/auth/login", headers, body)
end
