--[[
  A worker starts an attempt: records the step IN_PROGRESS under its delivery's fencing token
  (which takes the attempt over from any earlier delivery) and appends STEP_START, unless the run
  or the attempt has already ended (BullMQ can hand a step out again when its worker died after
  reporting the result but before completing the job) — then it changes nothing.

  KEYS[1] run record (hash)
  KEYS[2] step states (hash)
  KEYS[3] event stream
  ARGV[1] step key
  ARGV[2] state JSON (IN_PROGRESS, with `token`: the delivery's fencing token)
  ARGV[3] event JSON (STEP_START)
  ARGV[4] attempt number
  ARGV[5] delivery ordinal (see may_start; also in the state JSON), or '' to not check it

  Returns the start event's stream id, or 0 when the attempt must not run.
]]
-- @include "attempt"

if not may_start(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5] or '')) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
