--[[
  Sets a run's status; when the run has finished, starts its retention clock.
  Only touches a run that exists, so a stray status never creates half a record.

  KEYS[1] run record (hash)
  KEYS[2] run plan (string)
  KEYS[3] step states (hash)
  KEYS[4] event stream
  KEYS[5] outputs (hash)

  ARGV[1] status
  ARGV[2] endedAt (ISO-8601), or '' to leave it unset
  ARGV[3] retention in seconds: every key of the run expires then; '0' keeps them

  Returns 1, or 0 when the run does not exist.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'endedAt', ARGV[2]) end
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
