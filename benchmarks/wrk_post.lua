-- wrk script of bench_proxy.py: POST the body in $BENCH_BODY_FILE (read once) with
-- Content-Type: application/json and, when $BENCH_CONTENT_ENCODING is set, that
-- Content-Encoding. At the end it prints one line "BENCH_RESULT {json}" with the counts
-- and latency percentiles in microseconds, which bench_proxy.py parses.

local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local encoding = os.getenv("BENCH_CONTENT_ENCODING")
if encoding and encoding ~= "" then
   wrk.headers["Content-Encoding"] = encoding
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
