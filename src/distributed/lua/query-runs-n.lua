-- One page of runs from the runs indexes, newest first: walks the smallest set that every match
-- must be in and checks the other filters with ZSCORE, so a page costs about its own size.
-- Takes a variable number of keys (hence "-n").
--
-- KEYS[1]            every run by createdAt (walked when no other set narrows the search)
-- KEYS[2..1+ARGV[1]] status sets: a run must be in one of them (none: any status)
-- KEYS[2+ARGV[1]..]  job and tag sets: a run must be in all of them
--
-- ARGV[1] how many status sets
-- ARGV[2] page size
-- ARGV[3] highest createdAt score (ZREVRANGEBYSCORE max: '+inf', 'N' or '(N')
-- ARGV[4] lowest createdAt score ('-inf' or '(N')
-- ARGV[5] cursor: the last run id of the previous page, or ''
-- ARGV[6] cursor: that run's createdAt score
--
-- Returns {runId, score, ...}: up to page size + 1 runs (one more means another page follows).
local nOr = tonumber(ARGV[1])
local want = tonumber(ARGV[2]) + 1
local cursorId = ARGV[5]
local cursorScore = tonumber(ARGV[6])

local driver = KEYS[1]
local smallest = nil
local function consider(key)
  local n = redis.call('ZCARD', key)
  if smallest == nil or n < smallest then
    smallest = n
    driver = key
  end
end
for i = 2 + nOr, #KEYS do consider(KEYS[i]) end
if nOr == 1 then consider(KEYS[2]) end

local function matches(id)
  for i = 2 + nOr, #KEYS do
    if KEYS[i] ~= driver and not redis.call('ZSCORE', KEYS[i], id) then return false end
  end
  if nOr == 0 then return true end
  for i = 2, 1 + nOr do
    if redis.call('ZSCORE', KEYS[i], id) then return true end
  end
  return false
end

local out = {}
local found = 0
local offset = 0
local batch = 200
while found < want do
  local rows = redis.call('ZREVRANGEBYSCORE', driver, ARGV[3], ARGV[4], 'WITHSCORES', 'LIMIT', offset, batch)
  if #rows == 0 then break end
  for i = 1, #rows, 2 do
    local id = rows[i]
    local score = tonumber(rows[i + 1])
    local before_cursor = cursorId ~= '' and score == cursorScore and id >= cursorId
    if not before_cursor and matches(id) then
      out[#out + 1] = id
      out[#out + 1] = rows[i + 1]
      found = found + 1
      if found >= want then break end
    end
  end
  offset = offset + batch
end
return out
