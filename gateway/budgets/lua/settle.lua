-- Release a reservation's holds and add its real cost, once per reservation id.
--
-- KEYS: [1] the reservation's settled marker, then three per counter i:
--       [3i-1] counter hash  [3i] holds hash  [3i+1] hold expiries zset
-- ARGV: [1] reservation id  [2] cost (ticks)  [3] marker lifetime (s)
--       [4] when the first attempt failed (ms; 0: this is the first attempt)
--       then one per counter i: [4+i] soft limit (ticks; -1: none)
-- Returns {0} when already settled; else {1} then four numbers per counter i:
--         exists (0/1), spent, reserved, soft limit reached for the first time (0/1)

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then
  return {0}
end

local n = (#KEYS - 1) / 3
local failed_at = tonumber(ARGV[4])
local out = {1}
for i = 1, n do
  local counter, holds, expiries = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  if redis.call('EXISTS', counter) == 0 then
    -- Missing: it will be rebuilt from the log, which will hold this request's row.
    for _ = 1, 4 do out[#out + 1] = 0 end
  else
    local held = redis.call('HGET', holds, ARGV[1])
    if held then
      redis.call('HINCRBY', counter, 'reserved', '-' .. held)
      redis.call('HDEL', holds, ARGV[1])
      redis.call('ZREM', expiries, ARGV[1])
    end
    local spent
    local rebuilt_at = tonumber(redis.call('HGET', counter, 'rebuilt_at') or '0')
    if failed_at == 0 or rebuilt_at < failed_at then
      spent = redis.call('HINCRBY', counter, 'spent', ARGV[2])
    else
      -- Rebuilt from the log after the first attempt failed: the logged cost is in it.
      spent = tonumber(redis.call('HGET', counter, 'spent') or '0')
    end
    local reserved = tonumber(redis.call('HGET', counter, 'reserved') or '0')
    local alert = 0
    local soft = tonumber(ARGV[4 + i])
    if soft >= 0 and spent >= soft and redis.call('HSETNX', counter, 'alerted', '1') == 1 then
      alert = 1
    end
    out[#out + 1] = 1
    out[#out + 1] = spent
    out[#out + 1] = reserved
    out[#out + 1] = alert
  end
end
return out
