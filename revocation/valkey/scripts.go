package valkey

// This file holds the Lua scripts that write and read the list. Every
// script touches only keys of the store's one hash slot (see keys), and
// every key it touches is passed in KEYS, so that the scripts run on a
// cluster as they do on one server.

import (
	"crypto/sha1"
	"encoding/hex"
)

// script is a Lua script and its SHA-1, for EVALSHA.
type script struct {
	body string
	sha  string
}

func newScript(body string) script {
	h := sha1.Sum([]byte(body))
	return script{body: body, sha: hex.EncodeToString(h[:])}
}

// luaCommon is prepended to every write script: the epoch check, a
// comparison of decimal strings (exact beyond 2^53, where Lua's numbers
// are not) and the trim of expired index members.
const luaCommon = `
local function bigger(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local function checkEpoch(key, want)
  local e = redis.call('GET', key)
  if e ~= want then
    return redis.error_reply('SESSIOND_EPOCH the store holds another revocation list, or none: its epoch is not ' .. want)
  end
  return nil
end
local function trim(seqk, expk, limit)
  local now = redis.call('TIME')[1]
  local gone = redis.call('ZRANGEBYSCORE', expk, '-inf', now, 'LIMIT', 0, limit)
  if #gone > 0 then
    redis.call('ZREM', seqk, unpack(gone))
    redis.call('ZREM', expk, unpack(gone))
  end
  return #gone
end
`

// revokeScript stores a batch of revocations (one or more Revoke calls
// that waited together, see batch.go), each keeping the later expiry.
//
// KEYS: 1 the sequence counter, 2 the entries by sequence number, 3 the
// entries by expiry, 4 the epoch, 5 the retention, then one record per
// revocation. ARGV: 1 the epoch, 2 how many expired members to trim when
// a sequence number of the batch is a multiple of 16, then four per
// revocation: the writer's retention in ns, the expiry (Unix seconds), the
// same in ms (for PXAT), the id.
//
// It answers two values per revocation, in order: "OK", seq when it stored
// the record; "KEPT", 0 when the stored record lasts as long already (it
// then rewrites the record unchanged, with its TTL, so that this
// connection has a write after the one that stored it and WAITAOF covers
// that one too); "RETAIN", r when the store's retention r is larger than
// the writer's (nothing written: the writer recomputes the expiry and
// calls again). The record's value is "exp seq"; the index member is
// "id exp".
var revokeScript = newScript(luaCommon + `
local err = checkEpoch(KEYS[4], ARGV[1])
if err then return err end
local r = redis.call('GET', KEYS[5])
local out, trimNow = {}, false
for i = 6, #KEYS do
  local key, a = KEYS[i], 3 + 4 * (i - 6)
  local exp, id = ARGV[a + 1], ARGV[a + 3]
  local status, value = nil, 0
  if r and bigger(r, ARGV[a]) then
    status, value = 'RETAIN', r
  else
    local old = redis.call('GET', key)
    local oexp = old and string.match(old, '^(%d+) ')
    if oexp and tonumber(oexp) >= tonumber(exp) then
      redis.call('SET', key, old, 'KEEPTTL')
      status = 'KEPT'
    else
      if oexp then
        local m = id .. ' ' .. oexp
        redis.call('ZREM', KEYS[2], m)
        redis.call('ZREM', KEYS[3], m)
      end
      local seq = redis.call('INCR', KEYS[1])
      redis.call('SET', key, exp .. ' ' .. seq, 'PXAT', ARGV[a + 2])
      local m = id .. ' ' .. exp
      redis.call('ZADD', KEYS[2], seq, m)
      redis.call('ZADD', KEYS[3], exp, m)
      if seq % 16 == 0 then trimNow = true end
      status, value = 'OK', seq
    end
  end
  out[#out + 1] = status
  out[#out + 1] = value
end
if trimNow then trim(KEYS[2], KEYS[3], tonumber(ARGV[2])) end
return out
`)

// cutScript stores one subject cutoff, keeping the later cutoff and the
// later expiry of the stored record and this one.
//
// KEYS: 1 the record, 2 the sequence counter, 3 the cutoffs by sequence
// number, 4 the cutoffs by expiry, 5 the epoch. ARGV: 1 the epoch, 2 the
// cutoff (Unix seconds), 3 the expiry (Unix seconds), 4 the subject's hash
// (hex), 5 how many expired members a write whose sequence number is a
// multiple of 16 trims.
//
// Answers as revokeScript's. The value is "at exp seq"; the index member
// "hash at exp".
var cutScript = newScript(luaCommon + `
local err = checkEpoch(KEYS[5], ARGV[1])
if err then return err end
local at, exp = ARGV[2], ARGV[3]
local old = redis.call('GET', KEYS[1])
if old then
  local oat, oexp = string.match(old, '^(%d+) (%d+) ')
  if oat then
    if tonumber(oat) >= tonumber(at) and tonumber(oexp) >= tonumber(exp) then
      redis.call('SET', KEYS[1], old, 'KEEPTTL')
      return {'KEPT', 0}
    end
    local m = ARGV[4] .. ' ' .. oat .. ' ' .. oexp
    redis.call('ZREM', KEYS[3], m)
    redis.call('ZREM', KEYS[4], m)
    if tonumber(oat) > tonumber(at) then at = oat end
    if tonumber(oexp) > tonumber(exp) then exp = oexp end
  end
end
local seq = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], at .. ' ' .. exp .. ' ' .. seq, 'PXAT', exp .. '000')
local m = ARGV[4] .. ' ' .. at .. ' ' .. exp
redis.call('ZADD', KEYS[3], seq, m)
redis.call('ZADD', KEYS[4], exp, m)
if seq % 16 == 0 then trim(KEYS[3], KEYS[4], tonumber(ARGV[5])) end
return {'OK', seq}
`)

// initScript makes the epoch if there is none and returns the stored one.
// KEYS: 1 the epoch. ARGV: 1 a fresh epoch.
var initScript = newScript(`
local e = redis.call('GET', KEYS[1])
if e then return e end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// retainScript raises the stored retention and records the extension
// every record then needs, "seq delta": every record whose write has a
// sequence number up to seq gets delta seconds more (the difference of the
// retentions, rounded up to whole seconds). Writes after it use the new
// retention (revokeScript refuses a smaller one). It refuses while an
// earlier extension is unfinished.
//
// KEYS: 1 the retention, 2 the pending extension, 3 the sequence counter,
// 4 the epoch. ARGV: 1 the epoch, 2 the new retention (ns). Answers
// {"KEPT", r} when the stored retention r is at least as large,
// {"PENDING", ext} when an extension is unfinished, {"BEGUN", ext}.
var retainScript = newScript(luaCommon + `
local err = checkEpoch(KEYS[4], ARGV[1])
if err then return err end
local ext = redis.call('GET', KEYS[2])
if ext then return {'PENDING', ext} end
local r = redis.call('GET', KEYS[1]) or '0'
if not bigger(ARGV[2], r) then return {'KEPT', r} end
-- exact integer arithmetic in doubles: both retentions are below 2^53 ns
local x = tonumber(ARGV[2]) - tonumber(r)
local delta = math.floor(x / 1e9)
if delta * 1e9 < x then delta = delta + 1 end
local seq = redis.call('GET', KEYS[3]) or '0'
ext = seq .. ' ' .. string.format('%d', delta)
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ext)
return {'BEGUN', ext}
`)

// extendScript extends a batch of records of one kind (entries or
// cutoffs) for a pending extension.
//
// KEYS: 1 the sequence counter, 2 by sequence number, 3 by expiry, 4 the
// epoch, 5 the pending extension, then one record per member. ARGV: 1 the
// epoch, 2 the extension ("seq delta", which must still be pending), 3 the
// kind ("r" or "c"), then the index members of the records. A record whose
// sequence number is after the extension's was written since and needs
// nothing; a member whose record is gone (expired) is dropped.
var extendScript = newScript(luaCommon + `
local err = checkEpoch(KEYS[4], ARGV[1])
if err then return err end
if redis.call('GET', KEYS[5]) ~= ARGV[2] then return redis.error_reply('SESSIOND_EXTENSION the pending extension changed') end
local upto, delta = string.match(ARGV[2], '^(%d+) (%d+)$')
upto, delta = tonumber(upto), tonumber(delta)
local n = 0
for i = 4, #ARGV do
  local m, rec = ARGV[i], KEYS[i + 2]
  local v = redis.call('GET', rec)
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZREM', KEYS[3], m)
  if v then
    local name = string.match(m, '^(%S+) ')
    local at, exp, seq
    if ARGV[3] == 'r' then
      exp, seq = string.match(v, '^(%d+) (%d+)$')
    else
      at, exp, seq = string.match(v, '^(%d+) (%d+) (%d+)$')
    end
    if tonumber(seq) <= upto then
      exp = tostring(tonumber(exp) + delta)
      seq = redis.call('INCR', KEYS[1])
      local nm
      if ARGV[3] == 'r' then
        redis.call('SET', rec, exp .. ' ' .. seq, 'PXAT', exp .. '000')
        nm = name .. ' ' .. exp
      else
        redis.call('SET', rec, at .. ' ' .. exp .. ' ' .. seq, 'PXAT', exp .. '000')
        nm = name .. ' ' .. at .. ' ' .. exp
      end
      redis.call('ZADD', KEYS[2], seq, nm)
      redis.call('ZADD', KEYS[3], exp, nm)
      n = n + 1
    end
    -- else: written since the extension began, with the new retention;
    -- that write put its own member in the index.
  end
end
return n
`)

// finishScript ends a pending extension once no record of it is left.
// KEYS: 1 the pending extension, 2 entries by sequence number, 3 cutoffs
// by sequence number. ARGV: 1 the extension. Answers 1 when it ended it,
// 0 when records are left.
var finishScript = newScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 1 end
local upto = string.match(ARGV[1], '^(%d+) ')
if redis.call('ZCOUNT', KEYS[2], '-inf', upto) > 0 or redis.call('ZCOUNT', KEYS[3], '-inf', upto) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// trimScript drops up to ARGV[1] expired members of each index, by the
// server's clock. KEYS: 1 entries by sequence number, 2 by expiry, 3
// cutoffs by sequence number, 4 by expiry. Answers how many it dropped.
var trimScript = newScript(luaCommon + `
local limit = tonumber(ARGV[1])
return trim(KEYS[1], KEYS[2], limit) + trim(KEYS[3], KEYS[4], limit)
`)

// feedScript answers Changes and Head in one atomic read.
//
// KEYS: 1 the epoch, 2 the sequence counter, 3 entries by sequence number,
// 4 cutoffs by sequence number. ARGV: 1 since, 2 "head" or "changes".
// Answers {epoch or false, seq, snapshot (0/1), total entries, entries in
// the answer, total cutoffs} for "head", and {epoch or false, seq,
// snapshot, entries (member, score, ...), cutoffs (member, score, ...)}
// for "changes". The snapshot rule is Badger's: since 0, since after seq,
// or more than half of the entries in the delta anyway.
var feedScript = newScript(`
local e = redis.call('GET', KEYS[1])
local seq = redis.call('GET', KEYS[2]) or '0'
local total = redis.call('ZCARD', KEYS[3])
local since = tonumber(ARGV[1])
local snapshot = since == 0 or since > tonumber(seq)
local n = total
if not snapshot then
  n = redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf')
  if n > math.floor(total / 2) then snapshot = true; n = total end
end
local snap = 0
if snapshot then snap = 1 end
if ARGV[2] == 'head' then
  return {e, seq, snap, total, n, redis.call('ZCARD', KEYS[4])}
end
local from = '(' .. ARGV[1]
if snapshot then from = '-inf' end
return {e, seq, snap,
  redis.call('ZRANGEBYSCORE', KEYS[3], from, '+inf', 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[4], from, '+inf', 'WITHSCORES')}
`)

// allScripts are loaded (SCRIPT LOAD) on every node at Open.
var allScripts = []script{revokeScript, cutScript, initScript, retainScript, extendScript, finishScript, trimScript, feedScript}
