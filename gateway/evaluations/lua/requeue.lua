-- Move one dead letter back onto the jobs stream, atomically.
--
-- KEYS: [1] dead-letter stream  [2] jobs stream
-- ARGV: [1] dead letter id
-- Returns 1 when moved, 0 when there is no such dead letter.

local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return 0
end
local fields = found[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'job' then
    redis.call('XADD', KEYS[2], '*', 'job', fields[i + 1])
  end
end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
