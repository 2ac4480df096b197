--[[
  A worker starts an attempt: records the step IN_PROGRESS and appends STEP_START, unless the
  run or the step has already ended (BullMQ can hand a step out again when its worker died after
  reporting the result but before completing the job) — then it changes nothing.

  KEYS[1] run record (hash)
  KEYS[2] step states (hash)
  KEYS[3] event stream
  ARGV[1] step key
  ARGV[2] state JSON (IN_PROGRESS)
  ARGV[3] event JSON (STEP_START)
  ARGV[4] attempt number
  ARGV[5] optional: the attempt's STEP_ATTEMPT_END JSON, appended right after (a quick step's
          start and end in one call: whoever follows the stream sees both in one read)

  Returns the start event's stream id, or 0 when the attempt must not run (the end, if given,
  is appended all the same: it is what the worker reports).
]]
local function append_end()
  if ARGV[5] and ARGV[5] ~= '' then redis.call('XADD', KEYS[3], '*', 'e', ARGV[5]) end
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then
  append_end()
  return 0
end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if raw then
  local ok, state = pcall(cjson.decode, raw)
  if ok then
    local s = state.status
    local ended = s == 'SUCCESS' or s == 'FAILURE' or s == 'SKIPPED' or s == 'CANCELED'
    if ended and (tonumber(state.attempt) or 0) >= tonumber(ARGV[4]) then
      append_end()
      return 0
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local id = redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
append_end()
return id
