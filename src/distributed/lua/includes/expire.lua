-- @include "keys"

-- Returns a lease's slots to `used` and forgets it. Unknown ids are a no-op; true if it existed.
local function drop_lease(id)
  local raw = redis.call('HGET', K_LEASE_DATA, id)
  if raw then
    local ok, data = pcall(cjson.decode, raw)
    if ok and type(data.buckets) == 'table' then
      for _, b in ipairs(data.buckets) do
        if redis.call('HINCRBY', K_USED, b, -1) <= 0 then redis.call('HDEL', K_USED, b) end
      end
    end
    redis.call('HDEL', K_LEASE_DATA, id)
  end
  redis.call('ZREM', K_LEASES, id)
  return raw ~= false
end

local function drop_waiter(id)
  redis.call('ZREM', K_WAITERS, id)
  redis.call('ZREM', K_WAITER_DEADLINES, id)
  return redis.call('HDEL', K_WAITER_DATA, id) == 1
end

-- Returns the slots of the leases, and forgets the waiters, whose ids are ARGV[first..].
-- Unknown ids are a no-op. Returns how many leases there were.
local function release_ids(first)
  local released = 0
  for i = first, #ARGV do
    if drop_lease(ARGV[i]) then released = released + 1 end
    drop_waiter(ARGV[i])
  end
  return released
end

-- Forgets leases and waiters whose owner stopped renewing them. Returns how many.
local function expire(now)
  local n = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', fmt(now))) do
    drop_lease(id)
    n = n + 1
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_WAITER_DEADLINES, '-inf', fmt(now))) do
    drop_waiter(id)
    n = n + 1
  end
  return n
end
