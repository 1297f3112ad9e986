-- proxy.lua - wrk script for sluice's benchmarks (scripts/bench,
-- bench/peers/run.sh).
--
--   TARGET=http://127.0.0.1:ORIGIN_PORT/ wrk -s bench/proxy.lua \
--       http://127.0.0.1:PROXY_PORT/
--
-- wrk connects to the address on its command line (the proxy) and sends
-- the absolute-form request a client sends to a forward proxy:
--
--   GET http://127.0.0.1:ORIGIN_PORT/ HTTP/1.1
--   Host: 127.0.0.1:ORIGIN_PORT
--
-- With TARGET unset or empty, wrk sends the usual origin-form request to
-- the address on its command line (direct access), so every path is
-- measured by the same script. CLOSE=1 adds "Connection: close": a new
-- connection for every request (wrk reconnects).
--
-- At the end it prints one line that the scripts read, times in
-- microseconds:
--
--   bench: requests=N duration_us=D rps=R p50_us=X p90_us=X p99_us=X
--          max_us=X mean_us=X connect=N read=N write=N status=N timeout=N
--
-- (one line; status counts responses that were not 2xx or 3xx, as wrk's
-- "Non-2xx or 3xx responses").

local target = os.getenv("TARGET")

if target ~= nil and target ~= "" then
   local authority = target:match("^[hH][tT][tT][pP][sS]?://([^/?#]+)")
   if authority == nil then
      io.stderr:write("proxy.lua: TARGET must be an absolute http URL, got '"
                      .. target .. "'\n")
      os.exit(2)
   end
   if not target:match("^[hH][tT][tT][pP][sS]?://[^/?#]+[/?]") then
      target = target .. "/"
   end
   wrk.method = "GET"
   wrk.path = target
   wrk.headers["Host"] = authority
end

if os.getenv("CLOSE") == "1" then
   wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "bench: requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d " ..
      "p99_us=%d max_us=%d mean_us=%.1f connect=%d read=%d write=%d " ..
      "status=%d timeout=%d\n",
      summary.requests, summary.duration,
      secs > 0 and summary.requests / secs or 0,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
