-- get.lua: GET the URL given to wrk, over and over (the baseline, one cached product, a
-- list page, /api/users/me with -H "Authorization: Bearer …").
local report = require "report"
setup, response, done = report.setup, report.response, report.done
