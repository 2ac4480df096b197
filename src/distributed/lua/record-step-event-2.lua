--[[
  A step transition: the step's new state and its event, atomically and in order with the other
  commands on the connection (a MULTI would jump ahead of auto-pipelined commands).

  KEYS[1] step states (hash)
  KEYS[2] event stream
  ARGV[1] step key
  ARGV[2] state JSON
  ARGV[3] event JSON

  Returns the event's stream id.
]]
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])
