"""The Lua scripts of :mod:`.cluster`: every step two workers could race on, made atomic.

Redis runs a script to the end before it serves any other command, so each script below
is one indivisible step however many workers call it at once: forming a room cannot seat
a waiter twice, a reservation cannot be claimed twice, a condition counter cannot lose an
increment. The scripts use Redis's own clock (``TIME``), so "since when" and "absent for
how long" mean the same on every machine whatever its clock says.

Scripts build some keys themselves (a worker's presence hash, a member's mailbox) from the
prefixes they are given: that is fine on one Redis server (or a primary with replicas),
not on Redis Cluster, which this layer does not target. Worker ids are restricted to
``[A-Za-z0-9._-]`` so they need no escaping; other names are escaped as :func:`.cluster.esc`
does (``%`` → ``%25``, ``:`` → ``%3A``), by ``esc`` below.
"""

# Helpers shared by the scripts (prepended to each one that needs them).
COMMON = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function esc(s)
  return (string.gsub(s, '[%%:]', {['%'] = '%25', [':'] = '%3A'}))
end
-- A worker is alive while its presence hash exists (it expires without heartbeats); with
-- an incarnation, only that registration of the worker counts (a restart is a new one).
local function alive(P, w, inc)
  local cur = redis.call('HGET', P .. 'w:' .. w, 'incarnation')
  if not cur then return false end
  if inc and inc ~= '' and cur ~= inc then return false end
  return true
end
local function less(a, b)
  for i = 1, #a do
    if a[i] ~= b[i] then return a[i] < b[i] end
  end
  return false
end
-- The least-loaded live worker: fewest rooms (its placed rooms, counted the moment they
-- are placed, or the rooms its last heartbeat reported, whichever is more), then fewest
-- participants, then lowest p99 tick lateness, then worker id. cluster.rank() is the same.
local function pick_worker(P)
  local best, best_key = nil, nil
  for _, w in ipairs(redis.call('SMEMBERS', P .. 'workers')) do
    local h = redis.call('HMGET', P .. 'w:' .. w, 'url', 'rooms', 'participants', 'p99_ms', 'incarnation')
    if h[5] then
      local placed = redis.call('SCARD', P .. 'w:' .. w .. ':rooms')
      local key = {math.max(placed, tonumber(h[2]) or 0), tonumber(h[3]) or 0, tonumber(h[4]) or 0, w}
      if best == nil or less(key, best_key) then best, best_key = {w, h[1], h[5]}, key end
    end
  end
  return best
end
"""

# KEYS: presence hash, known-workers set. ARGV: worker id, url, rooms, participants, p99 ms
# ('' = none), incarnation, ttl ms. Returns 1 (was alive), 0 (presence re-created: first
# registration, or it had lapsed), -1 (another registration holds this id).
HEARTBEAT = COMMON + r"""
local key, known = KEYS[1], KEYS[2]
local cur = redis.call('HGET', key, 'incarnation')
if cur and cur ~= ARGV[6] then return -1 end
local now = now_ms()
redis.call('HSET', key, 'url', ARGV[2], 'rooms', ARGV[3], 'participants', ARGV[4], 'p99_ms', ARGV[5],
           'incarnation', ARGV[6], 'beat_ms', now)
if not cur then redis.call('HSET', key, 'started_ms', now) end
redis.call('PEXPIRE', key, tonumber(ARGV[7]))
redis.call('SADD', known, ARGV[1])
if cur then return 1 end
return 0
"""

# KEYS: presence hash. ARGV: incarnation. Deletes the presence only if it is this registration's.
UNREGISTER = r"""
if redis.call('HGET', KEYS[1], 'incarnation') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# ARGV: P. Returns the live workers with their load and placed rooms (JSON).
WORKERS = COMMON + r"""
local P = ARGV[1]
local now = now_ms()
local out = {}
for _, w in ipairs(redis.call('SMEMBERS', P .. 'workers')) do
  local h = redis.call('HMGET', P .. 'w:' .. w, 'url', 'rooms', 'participants', 'p99_ms', 'incarnation',
                       'beat_ms', 'started_ms')
  if h[5] then
    out[#out + 1] = {w, h[1], tonumber(h[2]) or 0, tonumber(h[3]) or 0, h[4],
                     redis.call('SCARD', P .. 'w:' .. w .. ':rooms'), now - (tonumber(h[6]) or now),
                     now - (tonumber(h[7]) or now), h[5]}
  end
end
return cjson.encode({now = now, workers = out})
"""

# Lobby scripts: KEYS are the lobby's queue (zset, score = arrival number), since (hash:
# participant → arrival ms), worker (participant → worker holding the connection), absent
# (participant → ms the connection closed), and for JOIN the arrival counter.

# KEYS[6]: the study's seated hash. ARGV: participant, worker, lobbies set key, scene,
# present ('1', or '0': their connection is closed — they keep a place for the grace window
# but are matched with nobody, exactly as if MARK_ABSENT came right after).
# Idempotent: already waiting → the place is kept (the worker updated, present as said).
# Returns {1 if new else 0, arrival ms}, or {-1, room} for someone seated in a room that has
# not ended (placed meanwhile: joining again must not seat them twice).
JOIN = COMMON + r"""
local q, since, worker, absent, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local pid, present = ARGV[1], ARGV[5] ~= '0'
local room = redis.call('HGET', KEYS[6], pid)
if room then return {-1, room} end
local now = now_ms()
local function presence()
  if present then redis.call('HDEL', absent, pid) else redis.call('HSETNX', absent, pid, now) end
end
if redis.call('ZSCORE', q, pid) then
  redis.call('HSET', worker, pid, ARGV[2])
  presence()
  return {0, redis.call('HGET', since, pid)}
end
redis.call('ZADD', q, redis.call('INCR', seq), pid)
redis.call('HSET', since, pid, now)
redis.call('HSET', worker, pid, ARGV[2])
presence()
redis.call('SADD', ARGV[3], ARGV[4])
return {1, tostring(now)}
"""

# ARGV: participant. Marks a waiter absent (the first time only: grace counts from then).
MARK_ABSENT = COMMON + r"""
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSETNX', KEYS[4], ARGV[1], now_ms())
return 1
"""

# ARGV: participant, worker. A waiter is back (possibly on another worker): present again.
BACK = r"""
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
"""

# Present = not marked absent and the worker holding the connection alive. A waiter whose
# worker is dead is absent from the moment that is first seen (its grace starts then).
PRESENT = r"""
local function present(P, absent, worker, pid, now, cache)
  if redis.call('HEXISTS', absent, pid) == 1 then return false end
  local w = redis.call('HGET', worker, pid)
  if w == false then return false end
  if cache[w] == nil then cache[w] = alive(P, w, nil) end
  if not cache[w] then
    redis.call('HSET', absent, pid, now)
    return false
  end
  return true
end
"""

# ARGV: P, study prefix S, study, scene, group size, least members, participant who must be
# in the group ('' = anyone), room id, reservation ttl ms, mailbox ttl ms, then per seat a
# token and its sha256. Takes the first present waiters in arrival order (with the named
# one, if any), places the room on the least-loaded live worker, seats each member with a
# one-time reservation and posts the room to each member's mailbox. Returns the placement
# (JSON), nil when too few are present (or the named one is not waiting and present), or
# {"error": "no_worker"} when no worker is alive.
FORM = COMMON + PRESENT + r"""
local q, since, worker, absent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local P, S, study, scene = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local size, least, include, room_id = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local resv_ttl, mail_ttl = tonumber(ARGV[9]), tonumber(ARGV[10])
local room_key = P .. 'room:' .. room_id
local done = redis.call('HGET', room_key, 'placement')
if done then return done end  -- this very call ran already (a retry after a broken connection)
local now = now_ms()
local cache = {}
local others_cap = size
if include ~= '' then others_cap = size - 1 end
local group, others, found = {}, 0, false
for _, pid in ipairs(redis.call('ZRANGE', q, 0, -1)) do
  if present(P, absent, worker, pid, now, cache) then
    if pid == include then
      group[#group + 1] = pid
      found = true
    elseif others < others_cap then
      group[#group + 1] = pid
      others = others + 1
    end
    if #group == size then break end
  end
end
if include ~= '' and not found then return false end
if #group == 0 or #group < least then return false end
local w = pick_worker(P)
if not w then return cjson.encode({error = 'no_worker'}) end
local reason = 'matched'
if #group < size then reason = 'filled' end
redis.call('HSET', room_key, 'room', room_id, 'study', study, 'scene', scene, 'worker', w[1], 'url', w[2],
           'incarnation', w[3], 'created_ms', now, 'members', cjson.encode(group), 'size', size, 'reason', reason)
redis.call('SADD', P .. 'w:' .. w[1] .. ':rooms', room_id)
redis.call('SADD', S .. 'rooms', room_id)
local seats = {}
for i, pid in ipairs(group) do
  local token, sha = ARGV[9 + 2 * i], ARGV[10 + 2 * i]
  local waited = now - (tonumber(redis.call('HGET', since, pid)) or now)
  redis.call('ZREM', q, pid)
  redis.call('HDEL', since, pid)
  redis.call('HDEL', worker, pid)
  redis.call('HDEL', absent, pid)
  redis.call('HSET', S .. 'seated', pid, room_id)
  local rk = P .. 'resv:' .. sha
  redis.call('HSET', rk, 'room', room_id, 'worker', w[1], 'incarnation', w[3], 'participant', pid, 'seat', i - 1,
             'study', study, 'scene', scene)
  redis.call('PEXPIRE', rk, resv_ttl)
  local mk = S .. 'mail:' .. esc(pid)
  redis.call('RPUSH', mk, cjson.encode({t = 'room', room = room_id, study = study, scene = scene, worker = w[1],
                                         incarnation = w[3], url = w[2], token = token, seat = i - 1,
                                         members = group, size = size, reason = reason, waited_ms = waited}))
  redis.call('PEXPIRE', mk, mail_ttl)
  redis.call('PUBLISH', P .. 'mail', mk)
  seats[i] = {pid, waited}  -- the caller made the tokens: none kept here
end
local placement = cjson.encode({room = room_id, worker = w[1], incarnation = w[3], url = w[2], members = group,
                                size = size, reason = reason, created_ms = now, seats = seats})
redis.call('HSET', room_key, 'placement', placement)
return placement
"""

# ARGV: P, grace ms. Removes waiters absent for at least the grace window; returns
# [[participant, waited ms], ...] (JSON).
EXPIRE_ABSENT = COMMON + PRESENT + r"""
local q, since, worker, absent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local P, grace = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local cache, gone = {}, {}
for _, pid in ipairs(redis.call('ZRANGE', q, 0, -1)) do
  present(P, absent, worker, pid, now, cache)  -- a dead worker's waiters start their grace now
  local away = redis.call('HGET', absent, pid)
  if away and now - tonumber(away) >= grace then
    gone[#gone + 1] = {pid, now - (tonumber(redis.call('HGET', since, pid)) or now)}
    redis.call('ZREM', q, pid)
    redis.call('HDEL', since, pid)
    redis.call('HDEL', worker, pid)
    redis.call('HDEL', absent, pid)
  end
end
if #gone == 0 then return '[]' end
return cjson.encode(gone)
"""

# ARGV: P. Who waits, in order (JSON), with Redis's clock.
LOBBY = COMMON + r"""
local q, since, worker, absent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms()
local cache, out = {}, {}
for _, pid in ipairs(redis.call('ZRANGE', q, 0, -1)) do
  local w = redis.call('HGET', worker, pid) or ''
  if cache[w] == nil then cache[w] = alive(ARGV[1], w, nil) end
  local away = redis.call('HGET', absent, pid)
  out[#out + 1] = {pid, tonumber(redis.call('HGET', since, pid)) or now, w, (not away) and cache[w],
                   away and tonumber(away) or false}
end
return cjson.encode({now = now, waiting = out})
"""

# Ownership of participants is fenced by the worker's incarnation: the owners hash names the
# worker, owner_incs the registration of it. A worker restarted under the same id is a new
# incarnation, so it never inherits its predecessor's participants, rooms or reservations as
# if they were its own: it takes them over as a dead worker's (their open game is lost).

# KEYS: reservation key. ARGV: worker, incarnation, P. One-time, and only on the registration of
# the worker it names; the claim makes that worker the participant's owner (the client moved there).
CLAIM_RESERVATION = COMMON + r"""
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end
local r = {}
for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
if r.worker ~= ARGV[1] or r.incarnation ~= ARGV[2] then
  return cjson.encode({error = 'wrong_worker', worker = r.worker})
end
redis.call('DEL', KEYS[1])
local S = ARGV[3] .. 's:' .. esc(r.study) .. ':'
redis.call('HSET', S .. 'owners', r.participant, ARGV[1])
redis.call('HSET', S .. 'owner_incs', r.participant, ARGV[2])
return cjson.encode(r)
"""

# KEYS: owners hash, owner_incs hash, seated hash. ARGV: participant, worker, incarnation, P.
# {1, previous owner or '', 1 if taken from a dead registration else 0} when the participant
# is now this registration's (unowned, already its, or its owner is dead); {0, worker, url}
# when a live worker must serve them: their live owner, or — while they are seated in a room
# on another live worker — that room's worker (a client at the wrong worker is sent on).
CLAIM_PARTICIPANT = COMMON + r"""
local owners, incs, seated = KEYS[1], KEYS[2], KEYS[3]
local pid, me, inc, P = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur, cur_inc = redis.call('HGET', owners, pid), redis.call('HGET', incs, pid)
local mine = cur == me and cur_inc == inc
if cur and not mine and alive(P, cur, cur_inc or '') then
  return {0, cur, redis.call('HGET', P .. 'w:' .. cur, 'url') or ''}
end
local room = redis.call('HGET', seated, pid)
if room then
  local r = redis.call('HMGET', P .. 'room:' .. room, 'worker', 'incarnation', 'url')
  if r[1] and not (r[1] == me and r[2] == inc) and alive(P, r[1], r[2] or '') then
    return {0, r[1], r[3] or ''}
  end
end
redis.call('HSET', owners, pid, me)
redis.call('HSET', incs, pid, inc)
if cur and not mine then return {1, cur, 1} end
return {1, cur or '', 0}
"""

# KEYS: owners hash, owner_incs hash. ARGV: participant, worker, incarnation. Let go only of
# one's own participant (this registration's).
RELEASE_PARTICIPANT = r"""
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] and redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[3] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# KEYS: assignments (participant → condition), counts (condition → n). ARGV: participant,
# then the conditions in declared order. The least-used condition (ties: first declared —
# igym.experiment.Experiment.choose_condition's rule), once per participant.
ASSIGN_CONDITION = r"""
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cur end
local best, best_n = nil, nil
for i = 2, #ARGV do
  local n = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if best == nil or n < best_n then best, best_n = ARGV[i], n end
end
redis.call('HINCRBY', KEYS[2], best, 1)
redis.call('HSET', KEYS[1], ARGV[1], best)
return best
"""

# Same KEYS. ARGV: participant. Takes a participant out of the counts (a declined consent:
# they never saw their condition, so balancing does not count them).
UNASSIGN_CONDITION = r"""
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], cur, -1)
return cur
"""

# KEYS: tokens (participant → sha256), token_pids (sha256 → participant). ARGV: participant,
# sha256. A new token replaces the participant's old one.
SET_TOKEN = r"""
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[2], old) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: room hash. ARGV: P, room id, mode, worker, incarnation. mode 'end': the hosting worker
# (the registration the room was placed on) ends its room; mode 'reap': a survivor takes a
# room whose worker (that registration of it) is dead — exactly one caller gets it. Returns
# the room (JSON) or nil.
END_ROOM = COMMON + r"""
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end
local r = {}
for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
local P = ARGV[1]
if ARGV[3] == 'end' and (r.worker ~= ARGV[4] or r.incarnation ~= ARGV[5]) then return false end
if ARGV[3] == 'reap' and alive(P, r.worker, r.incarnation) then return false end
local S = P .. 's:' .. esc(r.study) .. ':'
redis.call('DEL', KEYS[1])
redis.call('SREM', P .. 'w:' .. r.worker .. ':rooms', ARGV[2])
redis.call('SREM', S .. 'rooms', ARGV[2])
for _, pid in ipairs(cjson.decode(r.members)) do
  if redis.call('HGET', S .. 'seated', pid) == ARGV[2] then redis.call('HDEL', S .. 'seated', pid) end
end
return cjson.encode(r)
"""

# ARGV: P. The rooms whose worker (the registration that got them) is dead (JSON); known
# workers that are dead and hold no rooms are forgotten.
DEAD_ROOMS = COMMON + r"""
local P = ARGV[1]
local out = {}
for _, w in ipairs(redis.call('SMEMBERS', P .. 'workers')) do
  local rooms = redis.call('SMEMBERS', P .. 'w:' .. w .. ':rooms')
  if #rooms == 0 and not alive(P, w, nil) then
    redis.call('SREM', P .. 'workers', w)
  end
  for _, id in ipairs(rooms) do
    local flat = redis.call('HGETALL', P .. 'room:' .. id)
    if #flat == 0 then
      redis.call('SREM', P .. 'w:' .. w .. ':rooms', id)
    else
      local r = {}
      for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
      if not alive(P, w, r.incarnation) then out[#out + 1] = r end
    end
  end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"""
