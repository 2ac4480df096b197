-- delete-limit: removes a global limit and admits waiters it was holding back.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     changed channel
-- ARGV[3]     canonical spec
-- Returns 1 if the limit existed, else 0. Slots already held stay counted until released.
-- @include "grant-pass"

local now = now_ms()
expire(now)
local n = redis.call('HDEL', K_DEFS, ARGV[3])
if n > 0 then
  grant_pass(now, ARGV[1], nil)
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return n
