-- Claim jobs whose consumer went silent; bury those that have failed too often.
--
-- KEYS: [1] jobs stream  [2] dead-letter stream  [3] last errors hash (entry id -> message)
-- ARGV: [1] group  [2] consumer  [3] min idle (ms)  [4] count  [5] max failures
--       [6] now (ISO 8601, for failed_at)  [7] message for a job whose worker went silent
-- Returns {buried, {{id, job, failures}, ...}}: the claimed jobs still worth running.
--
-- Every delivery that did not end in an ack was a failed attempt (an error, a crash, a kill):
-- after XAUTOCLAIM counts this delivery, failures = deliveries - 1.

local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0',
  'COUNT', ARGV[4])
local live = {}
local buried = 0
for _, entry in ipairs(claimed[2]) do
  local id = entry[1]
  local fields = entry[2]
  local job = ''
  for i = 1, #fields, 2 do
    if fields[i] == 'job' then job = fields[i + 1] end
  end
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  local failures = tonumber(pending[1][4]) - 1
  if failures >= tonumber(ARGV[5]) then
    local err = redis.call('HGET', KEYS[3], id)
    if not err then err = ARGV[7] end
    redis.call('XADD', KEYS[2], '*', 'job', job, 'error', err, 'failures', failures,
      'failed_at', ARGV[6], 'source_id', id)
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
    buried = buried + 1
  else
    table.insert(live, {id, job, failures})
  end
end
return {buried, live}
