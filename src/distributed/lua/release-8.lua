-- release: returns the slots of leases (and forgets waiters) with these ids, then admits
-- whoever now fits. Idempotent: unknown ids are ignored.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2..]   lease or waiter ids
-- Returns the number of leases released.
-- @include "grant-pass"

local now = now_ms()
expire(now)
local released = release_ids(2)
grant_pass(now, ARGV[1], nil)
return released
