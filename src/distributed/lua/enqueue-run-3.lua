--[[
  Enters a recorded QUEUED run in the run queue, once: nothing changes when the run is queued or
  active (taken by a serve) already, so a repair may call it for any run it finds QUEUED.
  Every key shares the hash tag `{runqueue}`.

  KEYS[1] queued runs (zset: score -priority, member "<submitted ms, 15 digits>|<runId>")
  KEYS[2] queued entries (hash: runId -> JSON)
  KEYS[3] active runs (hash: runId -> JSON)

  ARGV[1] run id
  ARGV[2] member
  ARGV[3] score (-priority)
  ARGV[4] entry JSON {job, tags, member, submittedAt}

  Returns 1 when entered, 0 when it was there already.
]]
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
