--[[
  Starts queued runs: takes them from the queue in order (priority, then submission) while they
  fit under the run queue's limits, and records each as active, all in one call, so two serve
  processes never take the same run and never exceed max_concurrent_runs between them. The same
  rules as pickRuns() in src/core/run-queue.ts: a run held by a tag limit is passed over; a full
  max_concurrent_runs stops the pass. Every key shares the hash tag `{runqueue}`.

  KEYS[1] queued runs (zset: score -priority, member "<submitted ms, 15 digits>|<runId>")
  KEYS[2] queued entries (hash: runId -> JSON {job, tags, member, submittedAt})
  KEYS[3] active runs (hash: runId -> JSON {tags, by, claimedAt}): started from the queue, not ended
  KEYS[4] config (hash: max_concurrent_runs -> n; tag:<spec> -> n, spec KEY, KEY=VALUE or KEY=*)

  ARGV[1] the claiming serve's id
  ARGV[2] now, ISO-8601
  ARGV[3] how many runs this call may take at most
  ARGV[4] JSON array of the job names the caller can start ('[]': any job)
  ARGV[5] how many queued runs to look at, at most

  Returns {runId, ...}: the runs taken, in order.
]]
local max = tonumber(redis.call('HGET', KEYS[4], 'max_concurrent_runs') or '')
local limits = {}
local flat = redis.call('HGETALL', KEYS[4])
for i = 1, #flat, 2 do
  local field = flat[i]
  if string.sub(field, 1, 4) == 'tag:' then
    local spec = string.sub(field, 5)
    local lim = tonumber(flat[i + 1]) or 0
    local eq = string.find(spec, '=', 1, true)
    if not eq then
      limits[#limits + 1] = { key = spec, limit = lim }
    else
      local key, value = string.sub(spec, 1, eq - 1), string.sub(spec, eq + 1)
      if value == '*' then limits[#limits + 1] = { key = key, perValue = true, limit = lim }
      else limits[#limits + 1] = { key = key, value = value, limit = lim } end
    end
  end
end

-- The bucket names a run's tags count against (as bucketsFor() names them), with their limits.
local function buckets(tags)
  local out = {}
  for _, l in ipairs(limits) do
    local tv = tags[l.key]
    if type(tv) == 'string' then
      if l.perValue then out[#out + 1] = { l.key .. '=*:' .. tv, l.limit }
      elseif l.value == nil then out[#out + 1] = { l.key, l.limit }
      elseif l.value == tv then out[#out + 1] = { l.key .. '=' .. tv, l.limit } end
    end
  end
  return out
end

local running = 0
local inUse = {}
local function count(tags)
  running = running + 1
  for _, b in ipairs(buckets(tags)) do inUse[b[1]] = (inUse[b[1]] or 0) + 1 end
end
local active = redis.call('HVALS', KEYS[3])
for _, raw in ipairs(active) do
  local ok, a = pcall(cjson.decode, raw)
  count((ok and type(a.tags) == 'table') and a.tags or {})
end

local jobs = {}
local anyJob = true
for _, name in ipairs(cjson.decode(ARGV[4])) do jobs[name] = true; anyJob = false end

local taken = {}
local want = tonumber(ARGV[3])
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
for _, member in ipairs(members) do
  if #taken >= want then break end
  if max ~= nil and running >= max then break end
  local runId = string.sub(member, string.find(member, '|', 1, true) + 1)
  local raw = redis.call('HGET', KEYS[2], runId)
  if not raw then
    redis.call('ZREM', KEYS[1], member) -- its entry is gone: nothing to start
  else
    local entry = cjson.decode(raw)
    local tags = type(entry.tags) == 'table' and entry.tags or {}
    local fits = true
    for _, b in ipairs(buckets(tags)) do
      if (inUse[b[1]] or 0) >= b[2] then fits = false end
    end
    if fits and (anyJob or jobs[entry.job]) then
      redis.call('ZREM', KEYS[1], member)
      redis.call('HDEL', KEYS[2], runId)
      redis.call('HSET', KEYS[3], runId, cjson.encode({ tags = tags, job = entry.job, by = ARGV[1], claimedAt = ARGV[2] }))
      count(tags)
      taken[#taken + 1] = runId
    end
  end
end
return taken
