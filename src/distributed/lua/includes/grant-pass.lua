-- @include "expire"
-- @include "match"

-- Turns waiter `id` into a lease holding one slot in each bucket. No buckets: no lease.
-- The lease goes to `holder` (default: the waiter's owner) for `ttl` ms (default: the waiter's).
local function grant(id, w, buckets, now, holder, ttl)
  local names = {}
  for _, b in ipairs(buckets) do
    redis.call('HINCRBY', K_USED, b.name, 1)
    names[#names + 1] = b.name
  end
  if #names > 0 then
    local data = { buckets = names, runId = w.runId, stepKey = w.stepKey, attempt = w.attempt,
      holder = holder or w.holder, grantedAt = now }
    redis.call('HSET', K_LEASE_DATA, id, cjson.encode(data))
    redis.call('ZADD', K_LEASES, fmt(now + (ttl or tonumber(w.leaseTtl) or 10000)), id)
  end
  drop_waiter(id)
  return names
end

-- Admits waiters in order (priority, then arrival) while every bucket they match has room,
-- all or nothing per waiter. A waiter that cannot start reserves all its buckets: later
-- waiters touching any of them stay behind it, so a step needing two limits is not starved
-- by a stream of steps needing one; later waiters on disjoint buckets may still start.
-- Exception: a waiter matching a paused limit (0) reserves nothing, since it cannot start
-- until an operator raises that limit (which runs this pass again).
-- Publishes `["<id>", bucket...]` on `channel` for each admitted waiter except `quiet_id`.
-- `taker` (optional, {holder, queue, ttl}): an admitted waiter whose handoff names that queue gets
-- its lease made out to the taker, who enqueues the step at once (see release-take-8.lua).
-- Returns admitted id -> bucket names, and the list of {id, handoff job} taken.
local function grant_pass(now, channel, quiet_id, taker)
  local defs = load_defs()
  local used, blocked, granted, stuck, taken = {}, {}, {}, {}, {}
  local function used_of(name)
    if used[name] == nil then used[name] = tonumber(redis.call('HGET', K_USED, name)) or 0 end
    return used[name]
  end
  for _, id in ipairs(redis.call('ZRANGE', K_WAITERS, 0, -1)) do
    local raw = redis.call('HGET', K_WAITER_DATA, id)
    -- Within one pass slots only fill up and buckets only get blocked, so a waiter that did not
    -- fit means every later waiter with the same tags and limits does not fit either, and adds
    -- no new block: skip it without decoding (the pass stays cheap behind a long queue).
    local sig = raw and match_signature(raw)
    if not (sig and stuck[sig]) then
      local ok, w = false, nil
      if raw then ok, w = pcall(cjson.decode, raw) end
      if not ok or type(w) ~= 'table' then
        drop_waiter(id) -- unreadable: drop rather than wedge every later pass
      else
        local buckets = buckets_of(w, defs)
        local fits, paused = true, false
        for _, b in ipairs(buckets) do
          if b.limit <= 0 then paused = true end
          if blocked[b.name] or used_of(b.name) >= b.limit then fits = false end
        end
        if fits then
          local handoff = w.handoff
          local take = taker and #buckets > 0 and type(handoff) == 'table' and handoff.queue == taker.queue
            and type(handoff.job) == 'string'
          local names = grant(id, w, buckets, now, take and taker.holder or nil, take and taker.ttl or nil)
          if take then taken[#taken + 1] = { id, handoff.job } end
          for _, name in ipairs(names) do used[name] = used[name] + 1 end
          granted[id] = names
          if id ~= quiet_id then
            local msg = { id }
            for _, name in ipairs(names) do msg[#msg + 1] = name end
            redis.call('PUBLISH', channel, cjson.encode(msg))
          end
        else
          if not paused then
            for _, b in ipairs(buckets) do blocked[b.name] = true end
          end
          if sig then stuck[sig] = true end
        end
      end
    end
  end
  return granted, taken
end

-- What a client waiting on `id` should do: 'waiting', the lease JSON if granted, or 'missing'.
local function waiter_status(id)
  local lease = redis.call('HGET', K_LEASE_DATA, id)
  if lease then return lease end
  if redis.call('ZSCORE', K_WAITER_DEADLINES, id) then return 'waiting' end
  return 'missing'
end
