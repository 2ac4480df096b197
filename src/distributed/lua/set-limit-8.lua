-- set-limit: defines or changes a global limit; takes effect at once (raising admits waiters,
-- lowering lets running steps finish and admits none until under the new limit).
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     changed channel
-- ARGV[3]     canonical spec: `key`, `key=value` or `key=*`
-- ARGV[4]     limit, integer >= 0
-- Returns 1; -1 for a bad limit, -2 for an empty spec.
-- @include "grant-pass"

local limit = tonumber(ARGV[4])
if limit == nil or limit < 0 or limit ~= math.floor(limit) then return -1 end
if ARGV[3] == '' or string.sub(ARGV[3], 1, 1) == '=' then return -2 end
local now = now_ms()
expire(now)
redis.call('HSET', K_DEFS, ARGV[3], fmt(limit))
grant_pass(now, ARGV[1], nil)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
