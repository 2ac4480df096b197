--[[
  A coordinator's step decision: the step's new state and its event, atomically and in order
  with the other commands on the connection (a MULTI would jump ahead of auto-pipelined
  commands), and only while the caller holds the run lease.

  KEYS[1] run lease (string: holder)
  KEYS[2] step states (hash)
  KEYS[3] event stream
  ARGV[1] step key
  ARGV[2] state JSON
  ARGV[3] event JSON
  ARGV[4] lease holder ('' for an unfenced write)

  Returns the event's stream id, or 0 when the caller no longer holds the lease.
]]
-- @include "driver"

if not drives(KEYS[1], ARGV[4]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
