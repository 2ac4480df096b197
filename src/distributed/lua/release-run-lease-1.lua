--[[
  Gives up the lease on a run, only for the coordinator that holds it.

  KEYS[1] the run's driver key (string: holder id, with a TTL)
  ARGV[1] holder id

  Returns 1 if released, 0 if it was not held by this holder.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
