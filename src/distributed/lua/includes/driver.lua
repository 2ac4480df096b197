-- Coordinator writes are fenced by the run lease: `holder` must be the one holding the run's
-- driver key. An empty holder is an unfenced write (a caller that does not drive the run).
local function drives(driver_key, holder)
  return holder == '' or redis.call('GET', driver_key) == holder
end
