--[[
  A worker reports the end of an attempt: its output, the step's state (the attempt is done; the
  coordinator decides what follows) and STEP_ATTEMPT_END — all or nothing, and only while the
  attempt owns the step. A stale attempt (its step was handed to another worker meanwhile, or the
  run ended) writes nothing, so it can never overwrite the output downstream steps read.

  A quick first delivery that has not written its start yet starts and ends in this one call.

  KEYS[1] run record (hash)
  KEYS[2] step states (hash)
  KEYS[3] event stream
  KEYS[4] outputs (hash)
  ARGV[1] step key
  ARGV[2] attempt number
  ARGV[3] fencing token
  ARGV[4] STEP_ATTEMPT_END event JSON
  ARGV[5] state JSON once done (IN_PROGRESS, `done`)
  ARGV[6] output to store ('' when the attempt failed or has no output)
  ARGV[7] '1' when ARGV[6] is an output (an output may be the empty string: never)
  ARGV[8] STEP_START event JSON, or '' when the start was already written
  ARGV[9] state JSON at the start (with ARGV[8])
  ARGV[10] delivery ordinal (see may_start), or '' to not check it

  Returns the end event's stream id, or 0 when nothing was written.
]]
-- @include "attempt"

local step, attempt, token = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if ARGV[8] ~= '' then
  if not may_start(KEYS[1], KEYS[2], step, attempt, tonumber(ARGV[10] or '')) then return 0 end
  redis.call('HSET', KEYS[2], step, ARGV[9])
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[8])
elseif not owns(KEYS[1], KEYS[2], step, attempt, token) then
  return 0
end
if ARGV[7] == '1' then redis.call('HSET', KEYS[4], step, ARGV[6]) end
redis.call('HSET', KEYS[2], step, ARGV[5])
return redis.call('XADD', KEYS[3], '*', 'e', ARGV[4])
