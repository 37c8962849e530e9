-- Create a missing counter with the spend rebuilt from the request log; never overwrite one.
--
-- KEYS: [1] counter hash  [2] holds hash  [3] hold expiries zset
-- ARGV: [1] spent (ticks)  [2] now (ms): the rebuild time  [3] forget at (unix s on the caller's clock, 0: never)
--       then three per hold the installing gateway has in flight:
--       reservation id, ticks, expires at (ms)
-- Holds that survived the counter (an eviction) and the installer's own holds stay reserved.
-- Returns 1 when installed, 0 when another gateway installed it first.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- Lifetimes are relative to the caller's clock (ARGV[2]), not Redis's own.
local forget_at = tonumber(ARGV[3])
local ttl = forget_at - math.floor(tonumber(ARGV[2]) / 1000)
if ttl < 1 then ttl = 1 end
for i = 4, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i])
  end
end
if #ARGV > 3 and forget_at > 0 then
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
local reserved = 0
for _, held in ipairs(redis.call('HVALS', KEYS[2])) do
  reserved = reserved + tonumber(held)
end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'reserved', reserved, 'rebuilt_at', ARGV[2])
if forget_at > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
