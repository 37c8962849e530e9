-- Add many jobs in one round trip: one command to encode and one reply to read, however many
-- jobs (a pipeline of XADDs costs the gateway tens of microseconds of CPU per job).
--
-- KEYS: [1] jobs stream
-- ARGV: the jobs, each a JSON document
-- Returns the number of jobs added.

for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'job', ARGV[i])
end
return #ARGV
