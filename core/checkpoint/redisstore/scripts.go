package redisstore

import "github.com/redis/go-redis/v9"

// Every script judges time by Redis's own clock (TIME), so worker clocks
// never decide who owns a lease. Lease hashes hold: owner ("" when free),
// counter (the fencing token, HINCRBY on every take), expires (Redis
// milliseconds), seq, sub, complete ("0"/"1"), finished ("0"/"1").
// All keys of one (application, stream) share a hash tag, so the scripts
// work on a Redis Cluster too.
const prelude = `
if redis.replicate_commands then redis.replicate_commands() end
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
`

// cmpseq mirrors checkpoint.CompareSequence: "" first, then numeric order of
// decimal strings (length after leading zeros, then digits).
const cmpseq = `
local function cmpseq(a, b)
  if a == b then return 0 end
  if a == '' then return -1 end
  if b == '' then return 1 end
  a = string.gsub(a, '^0+', '')
  b = string.gsub(b, '^0+', '')
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  if a == b then return 0 end
  if a < b then return -1 end
  return 1
end
`

// take: KEYS lease, shards set; ARGV owner, session ms, shard id.
// Returns {1, counter, expires, seq, sub, complete, finished} when taken,
// {0, owner, counter} when another worker holds a live lease.
var takeScript = redis.NewScript(prelude + `
local now = nowms()
local h = redis.call('HMGET', KEYS[1], 'owner', 'counter', 'expires', 'seq', 'sub', 'complete', 'finished')
local owner = h[1] or ''
if owner ~= '' and owner ~= ARGV[1] and tonumber(h[3] or '0') > now then
  return {0, owner, h[2] or '0'}
end
local c = redis.call('HINCRBY', KEYS[1], 'counter', 1)
local e = ms(now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'expires', e)
redis.call('SADD', KEYS[2], ARGV[3])
return {1, tostring(c), e, h[4] or '', h[5] or '0', h[6] or '0', h[7] or '0'}
`)

// renew: KEYS workers, lease...; ARGV owner, session ms, beat ("1" to
// announce the worker), counter per lease. Returns {live or -1, then per
// lease: ok (1/0), owner, counter}.
var renewScript = redis.NewScript(prelude + `
local now = nowms()
local sess = tonumber(ARGV[2])
local out = {-1}
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], ms(now + sess), ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms(now))
  out[1] = redis.call('ZCARD', KEYS[1])
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], ms(tonumber(top[2]) + 1000))
end
for i = 2, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'owner', 'counter')
  local owner, cnt = h[1] or '', h[2] or '0'
  if owner == ARGV[1] and cnt == ARGV[i + 2] then
    redis.call('HSET', KEYS[i], 'expires', ms(now + sess))
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  out[#out + 1] = owner
  out[#out + 1] = cnt
end
return out
`)

// checkpoint: KEYS lease; ARGV owner, counter, seq, sub, complete, finished.
// Returns {1} when written (a position behind the stored one is kept
// unchanged), {0, owner, counter} when the lease is not the caller's.
var checkpointScript = redis.NewScript(cmpseq + `
local h = redis.call('HMGET', KEYS[1], 'owner', 'counter', 'seq', 'sub', 'complete')
local owner, cnt = h[1] or '', h[2] or '0'
if owner ~= ARGV[1] or cnt ~= ARGV[2] then
  return {0, owner, cnt}
end
local c = cmpseq(ARGV[3], h[3] or '')
if c == 0 then
  local oc, nc = 0, 0
  if h[5] == '1' then oc = 1 end
  if ARGV[5] == '1' then nc = 1 end
  if nc ~= oc then
    c = nc - oc
  else
    local os, ns = tonumber(h[4] or '0'), tonumber(ARGV[4])
    if ns > os then c = 1 elseif ns < os then c = -1 end
  end
end
if c > 0 then
  redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'sub', ARGV[4], 'complete', ARGV[5])
end
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'finished', '1')
end
return {1}
`)

// release: KEYS lease; ARGV owner, counter. Returns {1} or {0, owner, counter}.
var releaseScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'owner', 'counter')
local owner, cnt = h[1] or '', h[2] or '0'
if owner ~= ARGV[1] or cnt ~= ARGV[2] then
  return {0, owner, cnt}
end
redis.call('HSET', KEYS[1], 'owner', '', 'expires', '0')
return {1}
`)
