--[[
  Extends the lease on a run, only for the coordinator that holds it.

  KEYS[1] the run's driver key (string: holder id, with a TTL)
  ARGV[1] holder id
  ARGV[2] lease TTL in milliseconds

  Returns 1 if renewed, 0 if the lease is gone or held by someone else.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
