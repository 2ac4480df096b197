-- Shared by every semaphore script. All scripts take the same 8 KEYS, all under the one
-- hash tag `{limits}` (see src/distributed/semaphore/limit-keys.ts):
--   KEYS[1] defs              hash  spec -> limit (`database=redshift`, `database`, `team=*`)
--   KEYS[2] used              hash  bucket -> slots in use
--   KEYS[3] leases            zset  lease id -> deadline (server ms)
--   KEYS[4] lease-data        hash  lease id -> JSON {buckets, runId, stepKey, attempt, holder, grantedAt}
--   KEYS[5] waiters           zset  waiter id -> (1000 - priority) * 1e12 + seq
--   KEYS[6] waiter-data       hash  waiter id -> JSON {tags, runLimits, runId, stepKey, attempt, holder, leaseTtl}
--   KEYS[7] waiter-deadlines  zset  waiter id -> deadline (server ms)
--   KEYS[8] seq               string arrival counter for FIFO order
local K_DEFS, K_USED, K_LEASES, K_LEASE_DATA = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_WAITERS, K_WAITER_DATA, K_WAITER_DEADLINES, K_SEQ = KEYS[5], KEYS[6], KEYS[7], KEYS[8]

-- Redis server time: clients' clocks never decide whether a lease is alive.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Redis formats Lua numbers with %.14g; scores and deadlines need every digit.
local function fmt(n)
  return string.format('%.0f', n)
end
