-- Read counters after releasing expired holds (the same release as in reserve.lua).
--
-- KEYS, three per counter i: [3i-2] counter hash  [3i-1] holds hash  [3i] hold expiries zset
-- ARGV: [1] now (ms)
-- Returns three numbers per counter: exists (0/1), spent, reserved

local n = #KEYS / 3
local now = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local counter, holds, expiries = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('EXISTS', counter) == 0 then
    for _ = 1, 3 do out[#out + 1] = 0 end
  else
    local stale = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 256)
    for _, id in ipairs(stale) do
      local held = redis.call('HGET', holds, id)
      if held then
        redis.call('HINCRBY', counter, 'reserved', '-' .. held)
        redis.call('HDEL', holds, id)
      end
      redis.call('ZREM', expiries, id)
    end
    local state = redis.call('HMGET', counter, 'spent', 'reserved')
    out[#out + 1] = 1
    out[#out + 1] = tonumber(state[1] or '0')
    out[#out + 1] = tonumber(state[2] or '0')
  end
end
return out
