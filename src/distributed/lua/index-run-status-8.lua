--[[
  Moves a run to another status in the runs indexes and notes the change for watchers. Idempotent.

  KEYS[1]     runs meta (hash: runId -> JSON {job, tags, status, createdMs})
  KEYS[2]     run changes (stream)
  KEYS[3..8]  the per-status sets, in the order of RUN_STATUSES (src/core/status.ts)

  ARGV[1] runId
  ARGV[2] the new status
  ARGV[3] its index in KEYS (3..8)
  ARGV[4] when (ISO-8601)
  ARGV[5] how many changes the stream keeps (about)

  Returns 1, or 0 when the run is not indexed (nothing written).
]]
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return 0 end
local meta = cjson.decode(json)
for i = 3, 8 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[tonumber(ARGV[3])], meta.createdMs, ARGV[1])
meta.status = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(meta))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'runId', ARGV[1], 'job', meta.job, 'status', ARGV[2], 'at', ARGV[4])
return 1
