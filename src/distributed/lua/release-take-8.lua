-- release-take: a worker's release at the end of a step. Returns the slots like release; a
-- waiter admitted as a result whose handoff names the caller's queue has its lease made out to
-- the caller, and its BullMQ job comes back so the caller enqueues it at once, without waiting
-- for the waiter's coordinator to hear of the grant (it still does, and its own enqueue of the
-- same deterministic job id is a no-op). The caller then holds the lease as if it had claimed it.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     caller (holder of the leases it takes)
-- ARGV[3]     caller's queue
-- ARGV[4]     lease TTL ms for the leases it takes
-- ARGV[5..]   lease ids to release: those the caller holds, or that no worker has claimed (a
--             step refused before its claim); a stale worker's release of a lease another
--             worker has claimed since is ignored
-- Returns {released, id1, job1, id2, job2, ...}: the leases taken and their handoff jobs.
-- @include "grant-pass"

local now = now_ms()
expire(now)
local released = 0
for i = 5, #ARGV do
  local raw = redis.call('HGET', K_LEASE_DATA, ARGV[i])
  local ok, data = pcall(cjson.decode, raw or '')
  local holder = ok and type(data) == 'table' and data.holder or ''
  if not (raw and holder ~= ARGV[2] and string.sub(holder, 1, 7) == 'worker:') then
    if drop_lease(ARGV[i]) then released = released + 1 end
    drop_waiter(ARGV[i])
  end
end
local _, taken = grant_pass(now, ARGV[1], nil, { holder = ARGV[2], queue = ARGV[3], ttl = tonumber(ARGV[4]) })
local out = { released }
for _, t in ipairs(taken) do
  out[#out + 1] = t[1]
  out[#out + 1] = t[2]
end
return out
