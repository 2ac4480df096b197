-- Shared by the scripts a step attempt writes with. An attempt owns its step while the step's
-- state names the attempt's fencing token (the BullMQ lock token of its delivery) and it has not
-- reported its end; every write of the attempt is checked against that in the same call.

-- A run that ended, or that does not exist (expired, deleted, or named by a stray message):
-- nothing of an attempt is written to it.
local function run_ended(record_key)
  local status = redis.call('HGET', record_key, 'status')
  return not status or status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED'
end

local function step_state(steps_key, step)
  local raw = redis.call('HGET', steps_key, step)
  if not raw then return nil end
  local ok, state = pcall(cjson.decode, raw)
  if ok and type(state) == 'table' then return state end
  return nil
end

local DECIDED = { SUCCESS = true, FAILURE = true, SKIPPED = true, CANCELED = true }

-- Whether attempt `attempt` may start: not if the run or this attempt already ended. Otherwise
-- the latest delivery to start takes the attempt over (its earlier worker died, stalled past its
-- lock, or lost its slot): from then on only its writes are accepted, so whichever delivery
-- reports, exactly one result is recorded and it is the output downstream steps read.
-- `delivery` orders the deliveries of one attempt (BullMQ's start count, after the re-queue
-- count): an earlier delivery's start that reaches Redis late (its worker was cut off while
-- sending it) never takes the attempt back from a later one. nil: not checked.
local function may_start(record_key, steps_key, step, attempt, delivery)
  if run_ended(record_key) then return false end
  local state = step_state(steps_key, step)
  if not state then return true end
  local at = tonumber(state.attempt) or 0
  if at > attempt then return false end
  if at == attempt then
    if DECIDED[state.status] or state.done then return false end
    local latest = tonumber(state.delivery)
    if delivery and latest and latest > delivery then return false end
  elseif DECIDED[state.status] then
    -- Decided at an earlier attempt (a retry is UP_FOR_RETRY, never decided): nothing more to run.
    return false
  end
  return true
end

-- Whether the attempt with `token` owns the step now.
local function owns(record_key, steps_key, step, attempt, token)
  if run_ended(record_key) then return false end
  local state = step_state(steps_key, step)
  return state ~= nil and tonumber(state.attempt) == attempt and state.token == token
    and not state.done and not DECIDED[state.status]
end
