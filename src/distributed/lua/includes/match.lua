-- Which limit buckets a step counts against: the same rules and bucket names as bucketsFor()
-- in src/core/tag-limits.ts (`k=v`, `k`, `k=*:<value>`), run-scoped ones prefixed `run:<runId>:`.

local function parse_spec(spec, limit)
  local eq = string.find(spec, '=', 1, true)
  if not eq then return { key = spec, limit = limit } end
  local key, value = string.sub(spec, 1, eq - 1), string.sub(spec, eq + 1)
  if value == '*' then return { key = key, perUniqueValue = true, limit = limit } end
  return { key = key, value = value, limit = limit }
end

-- Global limits, read on every pass so a limit set while steps wait applies to them.
local function load_defs()
  local flat = redis.call('HGETALL', K_DEFS)
  local defs = {}
  for i = 1, #flat, 2 do defs[#defs + 1] = parse_spec(flat[i], tonumber(flat[i + 1]) or 0) end
  return defs
end

-- Appends {name, limit} per matched limit; a bucket matched twice keeps the smaller limit.
local function add_buckets(out, seen, tags, limits, prefix)
  for _, l in ipairs(limits) do
    local tv = tags[l.key]
    if type(tv) == 'string' then
      local name
      if l.perUniqueValue == true then
        name = l.key .. '=*:' .. tv
      elseif l.value == nil or l.value == cjson.null then
        name = l.key
      elseif l.value == tv then
        name = l.key .. '=' .. tv
      end
      if name then
        name = prefix .. name
        local lim = tonumber(l.limit) or 0
        local i = seen[name]
        if i == nil then
          out[#out + 1] = { name = name, limit = lim }
          seen[name] = #out
        elseif lim < out[i].limit then
          out[i].limit = lim
        end
      end
    end
  end
end

local function buckets_of(w, defs)
  local out, seen = {}, {}
  local tags = type(w.tags) == 'table' and w.tags or {}
  add_buckets(out, seen, tags, defs, '')
  if type(w.runLimits) == 'table' then
    add_buckets(out, seen, tags, w.runLimits, 'run:' .. tostring(w.runId) .. ':')
  end
  return out
end

-- The part of a waiter's JSON that decides its buckets: everything before `,"stepKey":`, i.e.
-- tags, runLimits and runId (the client writes those fields first, in that order). Sound because
-- a JSON string escapes its quotes: `],"runId":` can only end the runLimits array, and
-- `,"stepKey":` after it can only start that field. nil if the JSON is not in that shape.
local function match_signature(raw)
  if string.sub(raw, 1, 9) ~= '{"tags":{' then return nil end
  local limits_end = string.find(raw, '],"runId":', 1, true)
  if not limits_end then return nil end
  local step_at = string.find(raw, ',"stepKey":', limits_end, true)
  if not step_at then return nil end
  return string.sub(raw, 1, step_at - 1)
end
