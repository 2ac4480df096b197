-- claim: makes the caller the holder of a lease acquired elsewhere (worker takes over from
-- the coordinator) and extends it.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     lease id
-- ARGV[3]     new holder
-- ARGV[4]     lease TTL ms
-- Returns 1, or 0 when the lease no longer exists (released or expired).
-- @include "grant-pass"

local now = now_ms()
if expire(now) > 0 then grant_pass(now, ARGV[1], nil) end
local raw = redis.call('HGET', K_LEASE_DATA, ARGV[2])
if not raw then return 0 end
local data = cjson.decode(raw)
data.holder = ARGV[3]
redis.call('HSET', K_LEASE_DATA, ARGV[2], cjson.encode(data))
redis.call('ZADD', K_LEASES, fmt(now + tonumber(ARGV[4])), ARGV[2])
return 1
