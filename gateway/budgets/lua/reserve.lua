-- Hold ARGV[2] ticks on every counter, or on none of them (see gateway/budgets/ledger.py).
--
-- KEYS, three per counter i:  [3i-2] counter hash {spent, reserved, rebuilt_at, alerted}
--                             [3i-1] holds: hash reservation id -> ticks
--                             [3i]   hold expiries: zset reservation id -> unix ms
-- ARGV: [1] reservation id  [2] ticks  [3] now (ms)  [4] hold expires at (ms)
--       then two per counter i: [3+2i] limit (ticks)  [4+2i] forget window at (unix s on the caller's clock, 0: never)
-- Returns {0, i...}        counters i are missing: rebuild them from the log, then retry
--         {1, i, left}     counter i has only `left` ticks of room: nothing was held
--         {2, left...}     held on every counter; the room left on each afterwards

local n = #KEYS / 3
local missing = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[3 * i - 2]) == 0 then
    missing[#missing + 1] = i
  end
end
if #missing > 0 then
  return {0, unpack(missing)}
end

local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local left = {}
for i = 1, n do
  local counter, holds, expiries = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  -- Release holds whose gateway never settled them (it crashed or lost the store).
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
  -- A negative spend (a credit left by a gateway that trusted negative usage) is no room.
  local spent = math.max(tonumber(state[1] or '0'), 0)
  local room = tonumber(ARGV[3 + 2 * i]) - spent - tonumber(state[2] or '0')
  if amount > room then
    return {1, i, room}
  end
  left[i] = room - amount
end

for i = 1, n do
  local counter, holds, expiries = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HINCRBY', counter, 'reserved', ARGV[2])
  redis.call('HSET', holds, ARGV[1], ARGV[2])
  redis.call('ZADD', expiries, ARGV[4], ARGV[1])
  local forget_at = tonumber(ARGV[4 + 2 * i])
  if forget_at > 0 then
    -- Relative to the caller's clock (ARGV[3]), not Redis's own.
    local ttl = forget_at - math.floor(now / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('EXPIRE', holds, ttl)
    redis.call('EXPIRE', expiries, ttl)
  end
end
return {2, unpack(left)}
