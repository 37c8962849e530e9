-- Shared by chat.lua and chat_stream.lua (which set `stream` and dofile this).
--
-- Environment:
--   BENCH_API_KEY      bearer token sent as `Authorization: Bearer ...` (default: sk-bench)
--   BENCH_MODEL        model name in the body (default: gpt-4o-mini)
--   BENCH_HEADERS      extra request headers, one `Name: value` per line
--                      (e.g. "X-Sluice-Prompt: bench-greeting\nX-Sluice-User: u1");
--                      a literal "\n" (backslash n) also separates lines
--   BENCH_BODY         replaces the whole JSON body (then `stream` and BENCH_MODEL are ignored)
--   BENCH_MAX_REQUESTS stop each thread after this many responses (0 = until -d ends).
--                      The count is per wrk thread. wrk itself still waits for -d, so a
--                      thread that stops writes "BENCH_THREAD_DONE" to stderr and the
--                      caller (bench/run.py) sends SIGINT once every thread has, which
--                      makes wrk print its summary at once.
--
-- done() prints one line to stdout that bench/run.py parses:
--   BENCH_RESULT requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N mean_us=F
--                non2xx=N connect_err=N read_err=N write_err=N timeout_err=N bytes=N

local api_key = os.getenv("BENCH_API_KEY") or "sk-bench"
local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"

local headers = {
   ["Content-Type"] = "application/json",
   ["Authorization"] = "Bearer " .. api_key,
}
if stream then
   headers["Accept"] = "text/event-stream"
end

local extra = os.getenv("BENCH_HEADERS") or ""
extra = extra:gsub("\\n", "\n")
for line in extra:gmatch("[^\r\n]+") do
   local name, value = line:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
   if name then
      headers[name] = value
   end
end

local body = os.getenv("BENCH_BODY")
if body == nil or body == "" then
   body = '{"model":"' .. model .. '",'
      .. '"messages":[{"role":"user","content":"Say hello in five words."}],'
      .. '"max_tokens":16'
      .. (stream and ',"stream":true' or '')
      .. '}'
end

wrk.method = "POST"
wrk.body = body
wrk.headers = headers

local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0") or 0
if max_requests > 0 then
   local seen = 0
   function response(status, hdrs, resp_body)
      seen = seen + 1
      if seen == max_requests then
         io.stderr:write("BENCH_THREAD_DONE\n")
         io.stderr:flush()
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   local non2xx = e.status
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.2f "
         .. "non2xx=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d bytes=%d\n",
      summary.requests, summary.duration, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      non2xx, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
