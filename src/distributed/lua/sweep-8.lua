-- sweep: the periodic safety net. Expires dead leases and waiters, runs the grant pass, and
-- reports on the caller's own waiters in case a `granted` message was lost.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2..]   the caller's waiter ids
-- Returns {number of global limits, status per waiter id ('waiting' | lease JSON | 'missing')}.
-- @include "grant-pass"

local now = now_ms()
expire(now)
grant_pass(now, ARGV[1], nil)
local out = { redis.call('HLEN', K_DEFS) }
for i = 2, #ARGV do out[#out + 1] = waiter_status(ARGV[i]) end
return out
