-- release-run: returns every slot held, and forgets every waiter queued, by one run's steps
-- (a canceled run, or one whose coordinator died), then admits whoever now fits.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     run id
-- Returns the number of leases released.
-- @include "grant-pass"

local function of_run(raw)
  local ok, data = pcall(cjson.decode, raw)
  return ok and data.runId == ARGV[2]
end

local now = now_ms()
expire(now)
local released = 0
local leases = redis.call('HGETALL', K_LEASE_DATA)
for i = 1, #leases, 2 do
  if of_run(leases[i + 1]) and drop_lease(leases[i]) then released = released + 1 end
end
local waiters = redis.call('HGETALL', K_WAITER_DATA)
for i = 1, #waiters, 2 do
  if of_run(waiters[i + 1]) then drop_waiter(waiters[i]) end
end
grant_pass(now, ARGV[1], nil)
return released
