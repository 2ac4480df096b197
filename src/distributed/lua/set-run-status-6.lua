--[[
  Sets a run's status; when the run has finished, starts its retention clock. Only touches a run
  that exists, so a stray status never creates half a record; never changes a finished run's
  status (a run that ended SUCCESS stays SUCCESS); and, fenced, only while the caller holds the
  run lease.

  KEYS[1] run record (hash)
  KEYS[2] run plan (string)
  KEYS[3] step states (hash)
  KEYS[4] event stream
  KEYS[5] outputs (hash)
  KEYS[6] run lease (string: holder)

  ARGV[1] status
  ARGV[2] endedAt (ISO-8601), or '' to leave it unset
  ARGV[3] retention in seconds: every key of the run expires then; '0' keeps them
  ARGV[4] lease holder ('' for an unfenced write)
  ARGV[5] now (ISO-8601): a QUEUED run set STARTED started then (its startedAt)

  Returns 1; 0 when the run does not exist; -1 when it has already finished; -2 when the caller
  no longer holds the lease.
]]
-- @include "driver"

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[1], 'status')
if current == 'SUCCESS' or current == 'FAILURE' or current == 'CANCELED' then return -1 end
if not drives(KEYS[6], ARGV[4]) then return -2 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if current == 'QUEUED' and ARGV[1] == 'STARTED' and ARGV[5] and ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'startedAt', ARGV[5]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'endedAt', ARGV[2]) end
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
