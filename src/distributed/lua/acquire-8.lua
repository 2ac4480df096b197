-- acquire: adds a waiter (idempotent per id) and runs the grant pass in the same call, so an
-- uncontended step is admitted in one round trip.
-- KEYS[1..8]  the standard semaphore keys (includes/keys.lua)
-- ARGV[1]     granted channel
-- ARGV[2]     waiter id (becomes the lease id)
-- ARGV[3]     priority, integer; clamped to -1000..1000, higher first
-- ARGV[4]     waiter TTL ms: the owner must renew the waiter within this
-- ARGV[5]     waiter JSON {tags, runLimits, runId, stepKey, attempt, holder, leaseTtl}
-- Returns {1, bucket...} when admitted now (no buckets: nothing matched), {0} when waiting,
-- -3 when the waiter JSON is malformed.
-- @include "grant-pass"

local now = now_ms()
expire(now)
local channel, id = ARGV[1], ARGV[2]

local lease = redis.call('HGET', K_LEASE_DATA, id)
if lease then
  local out = { 1 }
  for _, b in ipairs(cjson.decode(lease).buckets) do out[#out + 1] = b end
  return out
end

if redis.call('HEXISTS', K_WAITER_DATA, id) == 0 then
  local ok, w = pcall(cjson.decode, ARGV[5])
  if not ok or type(w) ~= 'table' or type(w.runId) ~= 'string' then return -3 end
  local priority = math.floor(tonumber(ARGV[3]) or 0)
  if priority > 1000 then priority = 1000 elseif priority < -1000 then priority = -1000 end
  local seq = redis.call('INCR', K_SEQ)
  redis.call('ZADD', K_WAITERS, fmt((1000 - priority) * 1e12 + seq), id)
  redis.call('HSET', K_WAITER_DATA, id, ARGV[5])
end
redis.call('ZADD', K_WAITER_DEADLINES, fmt(now + tonumber(ARGV[4])), id)

local mine = grant_pass(now, channel, id)[id]
if mine then
  local out = { 1 }
  for _, b in ipairs(mine) do out[#out + 1] = b end
  return out
end
return { 0 }
