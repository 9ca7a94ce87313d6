-- wrk script of bench_proxy.py: POST the bodies of the files named in $BENCH_BODY_FILES
-- (one path per line, each read once, sent in turn) with Content-Type: application/json
-- and, when $BENCH_CONTENT_ENCODING is set, that Content-Encoding. At the end it prints one
-- line "BENCH_RESULT {json}" with the counts and latency percentiles in microseconds,
-- which bench_proxy.py parses.

local bodies = {}
for path in string.gmatch(os.getenv("BENCH_BODY_FILES"), "[^\n]+") do
   local file = assert(io.open(path, "rb"))
   bodies[#bodies + 1] = file:read("*a")
   file:close()
end
wrk.method = "POST"
wrk.body = bodies[1]
wrk.headers["Content-Type"] = "application/json"
local encoding = os.getenv("BENCH_CONTENT_ENCODING")
if encoding and encoding ~= "" then
   wrk.headers["Content-Encoding"] = encoding
end

-- One body: wrk sends the request it built from wrk.body. Several: each request is built
-- once, in init, and request() only hands the next one out.
if #bodies > 1 then
   local requests = {}
   local turn = 0
   init = function(args)
      for index, body in ipairs(bodies) do
         requests[index] = wrk.format(nil, nil, nil, body)
      end
   end
   request = function()
      turn = turn % #requests + 1
      return requests[turn]
   end
end

done = function(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "elapsed_us": %d, "errors": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration,
      errors.connect + errors.read + errors.write + errors.status + errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
