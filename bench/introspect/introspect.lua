-- SPDX-License-Identifier: AGPL-3.0-only
-- wrk script for bench/introspect: POST /introspect-style requests, rotating through the
-- tokens in the file named by TOKENS_FILE, authenticated with the AUTHORIZATION header value.
local tokens = {}
local file = assert(io.open(os.getenv("TOKENS_FILE"), "r"))
for line in file:lines() do
  if #line > 0 then tokens[#tokens + 1] = line end
end
file:close()
local auth = os.getenv("AUTHORIZATION")
local path = os.getenv("INTROSPECT_PATH")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end

function init(args)
  i = offset or 0
end

function request()
  i = i + 1
  local token = tokens[(i % #tokens) + 1]
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "token=" .. token)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
