-- wrk.lua - the request wrk sends in the bench, and one summary line.
--
-- The body, the key and the expected status come from the environment
-- (BENCH_BODY, BENCH_KEY, BENCH_EXPECT), so wrk and loadgen send the very
-- same bytes. With BENCH_EXPECT other than 200, every answer's status is
-- checked here (wrk itself only counts statuses >= 400 as one lump), which
-- costs wrk some time per answer: it is done only for the refusal run.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

if expect ~= 200 then
   expected, unexpected = 0, 0

   function response(status, headers, body)
      if status == expect then
         expected = expected + 1
      else
         unexpected = unexpected + 1
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local expected_n, unexpected_n = summary.requests, e.status
   if expect ~= 200 then
      expected_n, unexpected_n = 0, 0
      for _, t in ipairs(threads) do
         expected_n = expected_n + t:get("expected")
         unexpected_n = unexpected_n + t:get("unexpected")
      end
   else
      expected_n = summary.requests - e.status
   end
   local errors = e.connect + e.read + e.write + e.timeout + unexpected_n
   io.write(string.format(
      "ok=%d errors=%d err_connect=%d err_read=%d err_write=%d " ..
      "err_timeout=%d err_status=%d secs=%.3f rps=%.1f " ..
      "lat_p50_us=%.1f lat_p90_us=%.1f lat_p99_us=%.1f lat_max_us=%.1f\n",
      expected_n, errors, e.connect, e.read, e.write, e.timeout,
      unexpected_n, summary.duration / 1e6,
      expected_n / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
