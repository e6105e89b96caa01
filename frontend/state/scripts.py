"""The Lua scripts the Redis backend runs: why Lua, and what each keeps true.

Lua, not MULTI/WATCH: an update is read-modify-write over a whole context (add
each model's increments, then floor the log-weights against the best one, then
bound the app's contexts), and a script runs atomically inside Redis in one
round trip. WATCH would make a hundred frontends that learn the same context
retry each other's transactions; a script never conflicts and never retries.
The scripts touch keys they compute from a prefix (a context's hash when it is
evicted, an entry when the query log evicts it), so they need a single Redis or
a primary with replicas, not Redis Cluster.

UPDATE -- KEYS: context hash, the app's context index (a sorted set).
ARGV: context, max contexts, log floor, floored suffix, hash-key prefix of the
app's contexts, then (field, increment) pairs. Fields are ``arm|field``.

REMEMBER -- KEYS: the app's log index (sorted set of ``id:bytes`` by time), its
byte total, its eviction count. ARGV: TTL seconds, max bytes, entry-key prefix,
then (id, payload) pairs: every query one flush writes for the app, in one call.
Forgets index members older than the TTL (their entries expired by themselves),
adds the entries and evicts the oldest until the app's bytes are within the
bound. Returns how many were kept (an entry larger than the bound is not; one
already there, from a flush retried after a broken connection, is left as it is).

SEED -- KEYS: context hash. ARGV: the new arm's marker field (``arm|seeded``), then
(field, increment) pairs: the arm's prior. Adds the prior only if the marker was
not set yet, so of every frontend that saw the version change, one seeds it;
updates that reached the arm first keep their increments. 1 if this call did.

USE_UP -- KEYS: entry, log index, byte total. ARGV: ``id:``. Deletes the
entry; 1 if this call did (so exactly one feedback learns from a query).
"""

from __future__ import annotations

UPDATE = """
local floored = false
local suffix = ARGV[4]
for i = 6, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  if string.sub(ARGV[i], -#suffix) == suffix then floored = true end
end
if floored then
  local all = redis.call('HGETALL', KEYS[1])
  local best = nil
  for i = 1, #all, 2 do
    if string.sub(all[i], -#suffix) == suffix then
      local v = tonumber(all[i + 1])
      if best == nil or v > best then best = v end
    end
  end
  local low = best - tonumber(ARGV[3])
  for i = 1, #all, 2 do
    if string.sub(all[i], -#suffix) == suffix and tonumber(all[i + 1]) < low then
      redis.call('HSET', KEYS[1], all[i], string.format('%.17g', low))
    end
  end
end
if ARGV[1] ~= '' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
  local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
  if over > 0 then
    local old = redis.call('ZPOPMIN', KEYS[2], over)
    for i = 1, #old, 2 do redis.call('DEL', ARGV[5] .. old[i]) end
  end
end
return 1
"""

REMEMBER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local cutoff = now - ttl * 1000
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
for _, m in ipairs(expired) do
  redis.call('DECRBY', KEYS[2], tonumber(string.match(m, ':(%d+)$')))
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff) end
local kept = 0
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 4, #ARGV, 2 do
  local key = ARGV[3] .. ARGV[i]
  local size = #ARGV[i + 1]
  if size <= max and redis.call('EXISTS', key) == 0 then
    redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
    redis.call('ZADD', KEYS[1], now, ARGV[i] .. ':' .. size)
    total = total + size
    kept = kept + 1
  end
end
while total > max do
  local popped = redis.call('ZPOPMIN', KEYS[1], 1)
  if #popped == 0 then break end
  redis.call('DEL', ARGV[3] .. string.match(popped[1], '^(%d+):'))
  total = total - tonumber(string.match(popped[1], ':(%d+)$'))
  redis.call('INCR', KEYS[3])
end
redis.call('SET', KEYS[2], total)
return kept
"""

USE_UP = """
local payload = redis.call('GET', KEYS[1])
if not payload then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('ZREM', KEYS[2], ARGV[1] .. #payload) == 1 then
  redis.call('DECRBY', KEYS[3], #payload)
end
return 1
"""

SEED = """
if redis.call('HSETNX', KEYS[1], ARGV[1], 1) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"""
