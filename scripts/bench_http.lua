-- wrk script driven by run_wrk in scripts/benchlib.py, for bench_http.py and bench_floors.py
-- (not meant to be run by hand).
--
-- Configuration comes from the environment:
--   BENCH_MODE     "static": one request (BENCH_METHOD, BENCH_PATH, BENCH_AUTH, BENCH_BODY)
--                  "list":   GET, cycling through BENCH_FILE lines "<path>\t<authorization>"
--                  "verify": POST BENCH_PATH, one line of BENCH_FILE (a QR payload) per request;
--                            thread k of BENCH_THREADS takes lines k, k+T, k+2T, … so no
--                            credential is ever sent twice unless the file runs out
--                  "posts":  POST, one line of BENCH_FILE "<path>\t<json body>\t<idempotency key>"
--                            per request (BENCH_AUTH), split between threads like "verify"
--   BENCH_BENEFIT  benefit code for "verify"
-- done() prints one line "BENCH_JSON {...}" that the Python driver parses.

local mode = os.getenv("BENCH_MODE") or "static"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local reqs = {}
local n = 0
local i = 0
wrapped = 0

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function init(args)
  local path = os.getenv("BENCH_PATH") or "/healthz"
  local auth = os.getenv("BENCH_AUTH")
  if mode == "static" then
    local headers = {}
    if auth then headers["Authorization"] = auth end
    local body = os.getenv("BENCH_BODY")
    if body then headers["Content-Type"] = "application/json" end
    reqs[1] = wrk.format(os.getenv("BENCH_METHOD") or "GET", path, headers, body)
  elseif mode == "list" then
    local all = lines(os.getenv("BENCH_FILE"))
    -- Each thread starts at a different offset so the threads do not move in lock-step.
    for k = 1, #all do
      local line = all[((k - 1 + tid * 7) % #all) + 1]
      local p, a = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("GET", p, { Authorization = a }, nil)
    end
  elseif mode == "verify" then
    local benefit = os.getenv("BENCH_BENEFIT")
    local headers = { Authorization = auth, ["Content-Type"] = "application/json" }
    local all = lines(os.getenv("BENCH_FILE"))
    for k = tid + 1, #all, nthreads do
      -- Payloads are base64url segments joined by "." after "XY1:": no JSON escaping needed.
      local body = '{"credential":"' .. all[k] .. '","benefit":"' .. benefit .. '"}'
      reqs[#reqs + 1] = wrk.format("POST", path, headers, body)
    end
  elseif mode == "posts" then
    local all = lines(os.getenv("BENCH_FILE"))
    for k = tid + 1, #all, nthreads do
      local p, b, key = all[k]:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      local headers = { Authorization = auth, ["Content-Type"] = "application/json",
                        ["Idempotency-Key"] = key }
      reqs[#reqs + 1] = wrk.format("POST", p, headers, b)
    end
  else
    error("unknown BENCH_MODE " .. mode)
  end
  n = #reqs
  if n == 0 then error("no requests for this thread") end
end

function request()
  i = i + 1
  if i > n then
    -- Out of distinct requests: start again (for "verify" that reuses credentials, for
    -- "posts" a used verification or a closed session, which the server refuses, so the run
    -- shows errors instead of silently measuring less).
    i = 1
    if mode == "verify" or mode == "posts" then wrapped = 1 end
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local exhausted = 0
  for _, t in ipairs(threads) do
    if tonumber(t:get("wrapped") or 0) == 1 then exhausted = exhausted + 1 end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"exhausted_threads":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, exhausted))
end
