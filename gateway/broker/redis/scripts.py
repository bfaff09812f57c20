"""The Lua scripts the Redis broker runs, each one atomic step on Redis's side."""

# KEYS: state, history, and for a call that may join a dialled one (see
# docs/dialling.md#joining): its binding, the user's pending dial to its
# other party, the state of the dialled call its source named. ARGV:
# expected state ("" = none), new state ("" = unchanged), ttl, history
# length, channel, the dialled call the source named ("" = none), the run
# id of the Redis this process checked for lost data ("" = not yet), event
# JSON... A Redis with another run id restarted (or failed over) since the
# check, and may have lost data: nothing is written until it is checked
# (``LossRecovery._recover``); the reply names the run id found (on a
# cluster, the node the script was redirected to may be another primary
# this process checked). On a mismatch the reply carries the state found, so the caller can
# retry without a GET; a call with no state of its own that turns out to be
# a dialled call is answered with that call's key instead (the join is
# decided here, atomically, once for every instance).
ADVANCE = """
if ARGV[7] ~= '' then
  local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
  if run_id ~= ARGV[7] then return {'restarted', run_id} end
end
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current == '' and #KEYS > 2 then
  local dial = redis.call('GET', KEYS[3])
  if dial then return {'join', dial} end
  if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[5]) == 1 then
    dial = ARGV[6]
  elseif KEYS[4] ~= KEYS[3] then
    dial = redis.call('GET', KEYS[4])
    if dial then redis.call('DEL', KEYS[4]) end
  end
  if dial then
    redis.call('SET', KEYS[3], dial, 'EX', ARGV[3])
    return {'join', dial}
  end
end
if current ~= ARGV[1] then return {'conflict', current} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
local out = {'ok'}
for i = 8, #ARGV do
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'd', ARGV[i])
  redis.call('PUBLISH', ARGV[5], id .. ' ' .. ARGV[i])
  out[#out + 1] = id
end
if #out > 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return out
"""

# KEYS: a request key. ARGV: value, ttl. The value held, or nil once kept.
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

# KEYS: a pending dial. ARGV: the dial's key. 1 if it was still unclaimed.
FORGET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: a user's acknowledged position. ARGV: an event id, ttl. The position
# only moves forward (ids compare as <ms>-<seq>); the one held is returned.
ACKNOWLEDGE = """
local held = redis.call('GET', KEYS[1])
if held then
  local hm, hs = string.match(held, '^(%d+)-(%d+)$')
  local nm, ns = string.match(ARGV[1], '^(%d+)-(%d+)$')
  hm, hs, nm, ns = tonumber(hm), tonumber(hs), tonumber(nm), tonumber(ns)
  if hm and (hm > nm or (hm == nm and hs >= ns)) then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return held
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""

# KEYS: a rate window (a sorted set: one member per use, scored by its time
# in ms). ARGV: limit, window length in ms, a member unique to this use.
# Nil once counted; else the ms until a use leaves the window. Redis's own
# clock, so instances with drifting clocks share one window.
TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local blocking = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
  return tonumber(blocking[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return false
"""

# KEYS: the epoch key. ARGV: the epoch this process knows ("" = none yet),
# a new epoch, the recovery window in ms, "1" if Redis's run id changed
# since this process last connected. The key holds "<epoch> <ms>": the
# epoch, and until when (Redis's clock) calls wait for every instance to
# write back what it remembers. Answers {epoch, ms of the window left,
# verdict}: "new" (first contact with an empty Redis), "lost" (the key this
# process knew is gone: Redis lost its data), "changed" (another instance
# made a new epoch: it found the loss first, or had just started and knew
# of none, in which case the window opens now), "restarted" (same data,
# but Redis restarted or failed over, and may have lost its last writes),
# "joined" or "same".
EPOCH = """
local held = redis.call('GET', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[3])
if not held then
  if ARGV[1] == '' then
    redis.call('SET', KEYS[1], ARGV[2] .. ' 0')
    return {ARGV[2], 0, 'new'}
  end
  redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. (now + window))
  return {ARGV[2], window, 'lost'}
end
local epoch, closes = string.match(held, '^(%S+) (%d+)$')
closes = tonumber(closes)
if epoch ~= ARGV[1] then
  if ARGV[1] == '' then return {epoch, math.max(0, closes - now), 'joined'} end
  -- Another instance made this epoch; if it knew of no loss (it had just
  -- started), no window is open yet: this process opens one.
  if closes < now then
    closes = now + window
    redis.call('SET', KEYS[1], epoch .. ' ' .. closes)
  end
  return {epoch, closes - now, 'changed'}
end
if ARGV[4] == '1' then
  if closes < now then
    closes = now + window
    redis.call('SET', KEYS[1], epoch .. ' ' .. closes)
  end
  return {epoch, closes - now, 'restarted'}
end
return {epoch, math.max(0, closes - now), 'same'}
"""

# KEYS: a user's kept wrap-ups, a hash of call -> "<expiry ms>:<kept>". ARGV:
# the call, what to keep, now (ms), ttl (ms), how many a user keeps. Expired
# ones go, then the oldest beyond the cap (the call's own is replaced).
KEEP_WRAP_UP = """
local now, ttl, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local expiry = tonumber(string.match(all[i + 1], '^(%d+):'))
  if all[i] ~= ARGV[1] and expiry and expiry > now then
    table.insert(live, {expiry, all[i]})
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
table.sort(live, function(a, b) return a[1] < b[1] end)
for i = 1, #live - cap + 1 do redis.call('HDEL', KEYS[1], live[i][2]) end
redis.call('HSET', KEYS[1], ARGV[1], (now + ttl) .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
"""
