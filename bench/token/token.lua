-- SPDX-License-Identifier: AGPL-3.0-only
-- wrk script for bench/token: POST the token endpoint (TOKEN_PATH) with the client's
-- Basic credentials (AUTHORIZATION). Each request sends the next form body of BODIES_FILE
-- (one a line), each body once: wrk thread k of n sends lines k, k+n, k+2n, ... A file of one
-- line (client_credentials) is sent again and again. Past the end of a longer file the
-- requests repeat its last body, which the endpoint refuses (counted as non-2xx): the bench
-- then needs more tokens minted.
local bodies = {}
local file = assert(io.open(os.getenv("BODIES_FILE"), "r"))
for line in file:lines() do
  if #line > 0 then bodies[#bodies + 1] = line end
end
file:close()
local auth = os.getenv("AUTHORIZATION")
local path = os.getenv("TOKEN_PATH")
local threads = tonumber(os.getenv("THREADS") or "1")
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
end

function init(args)
  i = index or 0
end

function request()
  local body
  if #bodies == 1 then
    body = bodies[1]
  else
    body = bodies[math.min(i, #bodies - 1) + 1]
    i = i + threads
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
