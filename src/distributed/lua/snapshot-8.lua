-- snapshot: the state `limits list` shows, after expiring dead leases and waiters (so a
-- crashed process's slot shows free).
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- Returns {defs, used, lease-data, waiter-data}, each a flat HGETALL field/value list.
-- @include "grant-pass"

local now = now_ms()
if expire(now) > 0 then grant_pass(now, ARGV[1], nil) end
return {
  redis.call('HGETALL', K_DEFS),
  redis.call('HGETALL', K_USED),
  redis.call('HGETALL', K_LEASE_DATA),
  redis.call('HGETALL', K_WAITER_DATA),
}
