//! The Lua scripts: each runs atomically in Redis, so replicas never interleave inside one.
//! Records are the embedded store's binary layout (`encode_entry`): byte 2 is the label, bytes
//! 3..14 the seed, user-spam and not-spam counts (u32 LE), read with Redis' `struct` library.

use redis::Script;

/// Shared Lua helpers, prepended to the scripts that create entries.
const INDEX_HELPERS: &str = r#"
local function push_id(key, field, id, cap)
  local ids = redis.call('HGET', key, field) or ''
  local joined = id .. ids
  if cap > 0 then joined = string.sub(joined, 1, cap) end
  redis.call('HSET', key, field, joined)
end
-- KEYS[first .. first+15] are the bucket groups, ARGV[arg .. arg+15] the band keys.
local function index_entry(id, first, arg, kind, cap)
  for band = 0, 15 do
    push_id(KEYS[first + band], kind .. ARGV[arg + band], id, cap)
  end
end
"#;

/// KEYS: 16 bucket groups. ARGV: 16 band keys, ids per bucket, entry-key head.
/// Returns id .. record of every candidate, each once.
const LOOKUP: &str = r#"
local cap = tonumber(ARGV[17]) * 8
local head = ARGV[18]
local seen, out = {}, {}
local function visit(ids, limit)
  if not ids then return end
  local last = math.min(#ids, limit)
  for at = 1, last - 7, 8 do
    local id = string.sub(ids, at, at + 7)
    if not seen[id] then
      seen[id] = true
      local b1, b2 = string.byte(id, 1, 2)
      local record = redis.call('HGET', head .. string.format('%02x%02x}', b1, b2), id)
      if record then out[#out + 1] = id .. record end
    end
  end
end
for band = 1, 16 do
  local ids = redis.call('HMGET', KEYS[band], 'n' .. ARGV[band], 'r' .. ARGV[band])
  visit(ids[1], cap)
  visit(ids[2], math.huge)
end
return out
"#;

/// KEYS: entry group, 16 bucket groups, entry count. ARGV: id, new record, 16 band keys,
/// bucket cap in bytes, label code. Adds one seed to the entry (creating it); returns the record.
const ADD_SPAM: &str = r#"
local id = ARGV[1]
local record = redis.call('HGET', KEYS[1], id)
if record then
  local seed = struct.unpack('<I4', record, 3)
  record = string.sub(record, 1, 1) .. string.char(tonumber(ARGV[20]))
    .. struct.pack('<I4', math.min(seed + 1, 4294967295)) .. string.sub(record, 7)
else
  record = ARGV[2]
  index_entry(id, 2, 3, 'n', tonumber(ARGV[19]))
  redis.call('INCR', KEYS[18])
end
redis.call('HSET', KEYS[1], id, record)
return record
"#;

/// KEYS: entry group, 16 bucket groups, entry count, votes, reputation, audit.
/// ARGV: id, new record, 16 band keys, bucket cap in bytes, reporter hash, vote (1 spam, 0 not),
/// class code (-1: keep), quorum, audit record, distrust threshold.
/// Returns {record before ('' when new), record after}.
const REPORT: &str = r#"
local id, reporter, vote = ARGV[1], ARGV[20], tonumber(ARGV[21])
local quorum = math.max(tonumber(ARGV[23]), 1)
local before = redis.call('HGET', KEYS[1], id)
local record = before or ARGV[2]
if not before then
  index_entry(id, 2, 3, 'n', tonumber(ARGV[19]))
  redis.call('INCR', KEYS[18])
end
local function consensus(spam, white)
  if white >= quorum and white >= spam then return 2 end
  if spam >= quorum then return 1 end
  return 0
end
local function reputation(who)
  local value = redis.call('HGET', KEYS[20], who)
  if not value then return 0, 0 end
  local agreed, disagreed = struct.unpack('<I4I4', value)
  return agreed, disagreed
end
local agreed, disagreed = reputation(reporter)
local counted = not (disagreed >= tonumber(ARGV[25]) and disagreed > agreed)
local seed, spam, white = struct.unpack('<I4I4I4', record, 3)
local was_reported = spam + white > 0
local was = consensus(spam, white)
local previous = redis.call('HGET', KEYS[19], reporter)
if previous and string.byte(previous, 2) ~= 0 then
  if string.byte(previous, 1) == 1 then spam = math.max(spam - 1, 0) else white = math.max(white - 1, 0) end
end
if counted then
  if vote == 1 then spam = spam + 1 else white = white + 1 end
end
redis.call('HSET', KEYS[19], reporter, string.char(vote, counted and 1 or 0))
local audit = ARGV[24]
redis.call('RPUSH', KEYS[21], string.sub(audit, 1, 34) .. string.char(counted and 1 or 0) .. string.sub(audit, 36))
local changed = (not previous) or string.byte(previous, 1) ~= vote
local now = consensus(spam, white)
local function settle(who, cast)
  local a, d = reputation(who)
  if (cast == 1) == (now == 1) then a = a + 1 else d = d + 1 end
  redis.call('HSET', KEYS[20], who, struct.pack('<I4I4', a, d))
end
if now ~= 0 then
  if now ~= was then
    local votes = redis.call('HGETALL', KEYS[19])
    for at = 1, #votes, 2 do settle(votes[at], string.byte(votes[at + 1], 1)) end
  elseif changed then
    settle(reporter, vote)
  end
end
if (not was_reported) and spam + white > 0 then
  index_entry(id, 2, 3, 'r', 0)
end
local label = string.byte(record, 2)
local class = tonumber(ARGV[22])
if class >= 0 then label = class end
record = string.sub(record, 1, 1) .. string.char(label) .. struct.pack('<I4I4I4', seed, spam, white)
  .. string.sub(record, 15)
redis.call('HSET', KEYS[1], id, record)
return {before or '', record}
"#;

/// KEYS: the sender's hash. ARGV: now (ms), device hash (hex), most devices, expiry (s).
/// Counts one message, drops what left the windows; returns {last minute, last hour, devices
/// in the last hour, first seen (ms), spam votes, not-spam votes}.
const SENDER_OBSERVE: &str = r#"
local key, now = KEYS[1], tonumber(ARGV[1])
local second, minute = math.floor(now / 1000), math.floor(now / 60000)
local first = tonumber(redis.call('HGET', key, 'first') or ARGV[1])
if now < first then first = now end
redis.call('HSET', key, 'first', string.format('%.0f', first))
redis.call('HINCRBY', key, 'S:' .. second, 1)
redis.call('HINCRBY', key, 'M:' .. minute, 1)
local device = 'D:' .. ARGV[2]
local last_minute, last_hour, devices, spam, ham, known = 0, 0, 0, 0, 0, false
local fields = redis.call('HGETALL', key)
for at = 1, #fields, 2 do
  local field, value = fields[at], fields[at + 1]
  local kind, rest = string.sub(field, 1, 2), string.sub(field, 3)
  if kind == 'S:' then
    local bucket = tonumber(rest)
    if bucket <= second - 60 then redis.call('HDEL', key, field)
    elseif bucket <= second then last_minute = last_minute + tonumber(value) end
  elseif kind == 'M:' then
    local bucket = tonumber(rest)
    if bucket <= minute - 60 then redis.call('HDEL', key, field)
    elseif bucket <= minute then last_hour = last_hour + tonumber(value) end
  elseif kind == 'D:' then
    local seen = tonumber(value)
    if field == device then known = true end
    if seen <= now - 3600000 and field ~= device then redis.call('HDEL', key, field)
    elseif seen <= now or field == device then devices = devices + 1 end
  elseif kind == 'V:' then
    if value == '1' then spam = spam + 1 else ham = ham + 1 end
  end
end
if known then
  local seen = tonumber(redis.call('HGET', key, device))
  if seen < now then redis.call('HSET', key, device, ARGV[1]) end
elseif devices < tonumber(ARGV[3]) then
  redis.call('HSET', key, device, ARGV[1])
  devices = devices + 1
end
redis.call('EXPIRE', key, tonumber(ARGV[4]))
return {last_minute, last_hour, devices, first, spam, ham}
"#;

/// KEYS: the limit's key. ARGV: ms between tokens, burst, tokens wanted. GCRA on Redis' own
/// clock (so replicas' clocks do not matter); returns the tokens granted (0..wanted).
const TAKE_TOKENS: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval, burst, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local room = math.floor((now + burst * interval - tat) / interval + 1e-9)
local granted = math.max(0, math.min(wanted, room))
if granted > 0 then
  tat = tat + granted * interval
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end
return granted
"#;

/// KEYS: version counter, log. ARGV: the changes (JSON). Returns the last version.
const SYNC_APPEND: &str = r#"
local version = tonumber(redis.call('GET', KEYS[1]) or 0)
for at = 1, #ARGV do
  version = redis.call('INCR', KEYS[1])
  redis.call('ZADD', KEYS[2], version, version .. ':' .. ARGV[at])
end
return version
"#;

/// KEYS: sender-rules snapshot, version counter, log. ARGV: the snapshot the changes were
/// computed from ('' for none), the new snapshot, the changes. Returns the changes logged, or
/// -1 when another replica logged first (the caller recomputes).
const SYNC_SENDER_RULES: &str = r#"
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
for at = 3, #ARGV do
  local version = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[3], version, version .. ':' .. ARGV[at])
end
return #ARGV - 2
"#;

/// Every script, compiled once (the crate sends EVALSHA and loads on NOSCRIPT).
#[derive(Debug)]
pub struct Scripts {
    pub lookup: Script,
    pub add_spam: Script,
    pub report: Script,
    pub sender_observe: Script,
    pub take_tokens: Script,
    pub sync_append: Script,
    pub sync_sender_rules: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            lookup: Script::new(LOOKUP),
            add_spam: Script::new(&format!("{INDEX_HELPERS}{ADD_SPAM}")),
            report: Script::new(&format!("{INDEX_HELPERS}{REPORT}")),
            sender_observe: Script::new(SENDER_OBSERVE),
            take_tokens: Script::new(TAKE_TOKENS),
            sync_append: Script::new(SYNC_APPEND),
            sync_sender_rules: Script::new(SYNC_SENDER_RULES),
        }
    }

    /// The scripts a pipeline may invoke by hash (pipelines do not load on NOSCRIPT).
    pub fn pipelined(&self) -> [&Script; 3] {
        [&self.lookup, &self.sender_observe, &self.take_tokens]
    }
}
