-- renew: extends the caller's leases and waiters. A lease is extended only when its holder is
-- the caller, so a coordinator learns that a worker claimed it and stops renewing.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     holder (the caller)
-- ARGV[3]     lease TTL ms
-- ARGV[4]     waiter TTL ms
-- ARGV[5]     n, the number of lease ids that follow
-- ARGV[6..5+n]   lease ids
-- ARGV[6+n..]    waiter ids
-- Returns one entry per id in order: for leases 'renewed' | 'missing' | 'held-by-other';
-- for waiters 'waiting' | the lease JSON (granted) | 'missing'.
-- @include "grant-pass"

local now = now_ms()
if expire(now) > 0 then grant_pass(now, ARGV[1], nil) end
local holder, lease_ttl, waiter_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local out = {}
for i = 6, 5 + n do
  local raw = redis.call('HGET', K_LEASE_DATA, ARGV[i])
  if not raw then
    out[#out + 1] = 'missing'
  elseif cjson.decode(raw).holder ~= holder then
    out[#out + 1] = 'held-by-other'
  else
    redis.call('ZADD', K_LEASES, 'XX', fmt(now + lease_ttl), ARGV[i])
    out[#out + 1] = 'renewed'
  end
end
for i = 6 + n, #ARGV do
  local status = waiter_status(ARGV[i])
  if status == 'waiting' then redis.call('ZADD', K_WAITER_DEADLINES, 'XX', fmt(now + waiter_ttl), ARGV[i]) end
  out[#out + 1] = status
end
return out
