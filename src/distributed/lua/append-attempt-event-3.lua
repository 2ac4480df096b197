--[[
  An event of a running attempt (an op's log line), appended only while the attempt owns its step.

  KEYS[1] run record (hash)
  KEYS[2] step states (hash)
  KEYS[3] event stream
  ARGV[1] step key
  ARGV[2] attempt number
  ARGV[3] fencing token
  ARGV[4] event JSON

  Returns the event's stream id, or 0 when the attempt no longer owns the step (nothing written).
]]
-- @include "attempt"

if not owns(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3]) then return 0 end
return redis.call('XADD', KEYS[3], '*', 'e', ARGV[4])
