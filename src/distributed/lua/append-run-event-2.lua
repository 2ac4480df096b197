--[[
  A coordinator's run event (RUN_START, a waiting notice, RUN_SUCCESS, ...), appended only while
  the caller holds the run lease.

  KEYS[1] run lease (string: holder)
  KEYS[2] event stream
  ARGV[1] event JSON
  ARGV[2] lease holder

  Returns the event's stream id, or 0 when the caller no longer holds the lease.
]]
-- @include "driver"

if not drives(KEYS[1], ARGV[2]) then return 0 end
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
