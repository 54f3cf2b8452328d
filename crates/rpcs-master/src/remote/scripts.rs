//! The Lua scripts of the Redis backend, one per operation on one stack,
//! storage or client: Redis runs each atomically. Every script checks before
//! it writes (Redis does not roll a failing script back), reads the time from
//! Redis (`TIME`), so masters with different clocks agree on deadlines, and
//! publishes a wake-up for what it frees.
//!
//! Each thing's keys share one hash tag, so a script touches only keys of one
//! slot and a Redis Cluster spreads the things across its shards. Every script
//! takes its thing's key prefix `K` as its one declared key and first
//! argument (`{NS:s:STACK}:`, `{NS:p:STORAGE}:` or `{NS:c:CLIENT}:`, which
//! routes it on a cluster), the time to use instead of Redis's (or '') as its
//! second, and its own arguments after.
//!
//! A stack's keys: `on` (it exists: Redis drops an empty list), `items` (LIST,
//! right end on top), `leases` (HASH id → lease), `due` (ZSET id → deadline),
//! `owned:C` (SET of the lease ids client C holds), `seen` (SET of the keys it
//! has claimed). A lease is packed as
//! `struct.pack('>i8I4', deadline, #owner) .. owner .. item`. A storage's:
//! `on`, `params` (HASH). A client's: `session` (HASH), `msgs` (LIST, left end
//! oldest), `stacks` (SET of the stacks it took leases on). Wake-ups go to the
//! channel `K .. 'wake'`. The namespace's own keys (`{NS}:`) only index, for
//! the sweeps, what may need them: `leased` (SET of stacks that may hold
//! leases) and `clients` (ZSET name → a time it was seen).

use redis::Script;
use std::sync::LazyLock;

/// The time in milliseconds: by Redis's clock, unless the second argument
/// gives it (tests move time on their own).
const NOW: &str = "
local function now_ms()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// Gives a lease's item back on top of its stack; false if it is not held.
const GIVE_BACK_LEASE: &str = "
local function give_back_lease(K, id, push)
  local rec = redis.call('HGET', K .. 'leases', id)
  redis.call('ZREM', K .. 'due', id)
  if not rec then return false end
  local _, olen, pos = struct.unpack('>i8I4', rec)
  redis.call('HDEL', K .. 'leases', id)
  if olen > 0 then
    redis.call('SREM', K .. 'owned:' .. string.sub(rec, pos, pos + olen - 1), id)
  end
  if push then
    redis.call('RPUSH', K .. 'items', string.sub(rec, pos + olen))
    redis.call('PUBLISH', K .. 'wake', 1)
  end
  return true
end
";

/// Ends a session when `cond(session key)` holds: drops it and its messages;
/// `{1, stacks it took leases on}`, `{0}` if it was not logged in, or what
/// `cond` answered when it does not hold.
const END_SESSION: &str = "
local function end_session(K, cond)
  local key = K .. 'session'
  if redis.call('EXISTS', key) == 0 then return {0} end
  local keep = cond(key)
  if keep then return keep end
  local stacks = redis.call('SMEMBERS', K .. 'stacks')
  redis.call('DEL', key, K .. 'msgs', K .. 'stacks')
  redis.call('PUBLISH', K .. 'wake', 0)
  return {1, stacks}
end
";

/// Marks a session seen now; the time for the namespace's index of clients
/// when it is due for an update (once a second at most), else 0.
const SEEN_NOW: &str = "
local function seen_now(key, now)
  redis.call('HSET', key, 'visit', now)
  if now - tonumber(redis.call('HGET', key, 'indexed') or 0) < 1000 then return 0 end
  redis.call('HSET', key, 'indexed', now)
  return now
end
";

fn script(parts: &[&str]) -> Script {
    Script::new(&parts.concat())
}

macro_rules! scripts {
    ($($(#[$doc:meta])* $name:ident = [$($part:expr),*];)*) => {
        $($(#[$doc])* pub static $name: LazyLock<Script> = LazyLock::new(|| script(&[$($part),*]));)*
    };
}

scripts! {
    /// Stack. ARGV: K, now, item... → the new size. Creates the stack.
    PUSH = ["
local K = ARGV[1]
redis.call('SET', K .. 'on', 1)
local key = K .. 'items'
local len = redis.call('LLEN', key)
for i = 3, #ARGV, 1000 do
  len = redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV > 2 then redis.call('PUBLISH', K .. 'wake', #ARGV - 2) end
return len
"];
    /// Stack. ARGV: K, now, key, item ('' for none), ... → per key 1 if it was
    /// new (and its item is pushed), else 0. Creates the stack.
    CLAIM = ["
local K = ARGV[1]
redis.call('SET', K .. 'on', 1)
local seen, items, out, pushed = K .. 'seen', K .. 'items', {}, 0
for i = 3, #ARGV, 2 do
  local new = redis.call('SADD', seen, ARGV[i])
  out[#out + 1] = new
  if new == 1 and ARGV[i + 1] ~= '' then
    redis.call('RPUSH', items, ARGV[i + 1])
    pushed = pushed + 1
  end
end
if pushed > 0 then redis.call('PUBLISH', K .. 'wake', pushed) end
return out
"];
    /// Stack. ARGV: K, now, count, budget → {0} for no stack, {1, items top first}.
    POP = ["
local K = ARGV[1]
if redis.call('EXISTS', K .. 'on') == 0 then return {0} end
local key, n, budget = K .. 'items', tonumber(ARGV[3]), tonumber(ARGV[4])
local out, bytes = {}, 0
while #out < n and (#out == 0 or bytes < budget) do
  local item = redis.call('RPOP', key)
  if not item then break end
  out[#out + 1] = item
  bytes = bytes + #item
end
return {1, out}
"];
    /// Stack. ARGV: K, now, id, lease_ms, owner ('' for none) → {0} if there is
    /// no item, {-1} if the id is taken, {1, deadline, item, whether the stack
    /// held no lease before, whether the owner held none here before}.
    TAKE = [NOW, "
local K, id, owner = ARGV[1], ARGV[3], ARGV[5]
local leases = K .. 'leases'
if redis.call('HEXISTS', leases, id) == 1 then return {-1} end
local item = redis.call('RPOP', K .. 'items')
if not item then return {0} end
local first = 0
if redis.call('HLEN', leases) == 0 then first = 1 end
local deadline = now_ms() + tonumber(ARGV[4])
redis.call('HSET', leases, id, struct.pack('>i8I4', deadline, #owner) .. owner .. item)
redis.call('ZADD', K .. 'due', deadline, id)
local mine = 0
if owner ~= '' then
  local owned = K .. 'owned:' .. owner
  redis.call('SADD', owned, id)
  if redis.call('SCARD', owned) == 1 then mine = 1 end
end
return {1, deadline, item, first, mine}
"];
    /// Stack. ARGV: K, now, id, release ('1' puts the item back) → 1 if the
    /// lease was held.
    FINISH = [GIVE_BACK_LEASE, "
if give_back_lease(ARGV[1], ARGV[3], ARGV[4] == '1') then return 1 end
return 0
"];
    /// Stack. ARGV: K, now, id, lease_ms → 1 if the lease was held and not
    /// yet due, and now ends lease_ms from now.
    EXTEND = [NOW, "
local K, id = ARGV[1], ARGV[3]
local rec = redis.call('HGET', K .. 'leases', id)
if not rec then return 0 end
local now = now_ms()
if struct.unpack('>i8', rec) <= now then return 0 end
local deadline = now + tonumber(ARGV[4])
redis.call('HSET', K .. 'leases', id, struct.pack('>i8', deadline) .. string.sub(rec, 9))
redis.call('ZADD', K .. 'due', deadline, id)
return 1
"];
    /// Stack. ARGV: K, now, limit → {due leases looked at, leases left}.
    EXPIRE = [NOW, GIVE_BACK_LEASE, "
local K = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', K .. 'due', '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do give_back_lease(K, id, true) end
return {#due, redis.call('HLEN', K .. 'leases')}
"];
    /// Stack. ARGV: K, now, owner → how many of the owner's leases went back.
    RELEASE_OWNED = [GIVE_BACK_LEASE, "
local K, owned = ARGV[1], ARGV[1] .. 'owned:' .. ARGV[3]
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', owned)) do
  if give_back_lease(K, id, true) then n = n + 1 end
end
redis.call('DEL', owned)
return n
"];
    /// Stack. ARGV: K, now → the number of items, -1 for no stack.
    SIZE = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return -1 end
return redis.call('LLEN', ARGV[1] .. 'items')
"];
    /// Stack. ARGV: K, now → the number of leased items, -1 for no stack.
    LEASED = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return -1 end
return redis.call('HLEN', ARGV[1] .. 'leases')
"];
    /// Stack. ARGV: K, now → how many items there were, -1 for no stack.
    TRUNCATE = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return -1 end
local key = ARGV[1] .. 'items'
local n = redis.call('LLEN', key)
redis.call('DEL', key)
return n
"];
    /// Stack. ARGV: K, now → 1, or 0 for no stack. Its leases go with it.
    REMOVE_STACK = ["
local K = ARGV[1]
if redis.call('DEL', K .. 'on') == 0 then return 0 end
for _, rec in ipairs(redis.call('HVALS', K .. 'leases')) do
  local _, olen, pos = struct.unpack('>i8I4', rec)
  if olen > 0 then redis.call('DEL', K .. 'owned:' .. string.sub(rec, pos, pos + olen - 1)) end
end
redis.call('DEL', K .. 'items', K .. 'leases', K .. 'due', K .. 'seen')
return 1
"];

    /// Storage. ARGV: K, now, param, value, ... → 1. Creates the storage.
    SET_PARAMS = ["
redis.call('SET', ARGV[1] .. 'on', 1)
local key = ARGV[1] .. 'params'
for i = 3, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return 1
"];
    /// Storage. ARGV: K, now, param → {-1} for no storage, {0} unset, {1, value}.
    GET_PARAM = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return {-1} end
local v = redis.call('HGET', ARGV[1] .. 'params', ARGV[3])
if not v then return {0} end
return {1, v}
"];
    /// Storage. ARGV: K, now → {-1} for no storage, {1, {param, value, ...}}.
    PARAMS = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return {-1} end
return {1, redis.call('HGETALL', ARGV[1] .. 'params')}
"];
    /// Storage. ARGV: K, now → the number of parameters, -1 for no storage.
    STORAGE_SIZE = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return -1 end
return redis.call('HLEN', ARGV[1] .. 'params')
"];
    /// Storage. ARGV: K, now, param → 1 removed, 0 unset, -1 no storage.
    REMOVE_PARAM = ["
if redis.call('EXISTS', ARGV[1] .. 'on') == 0 then return -1 end
return redis.call('HDEL', ARGV[1] .. 'params', ARGV[3])
"];
    /// Storage. ARGV: K, now → 1, or 0 for no storage.
    REMOVE_STORAGE = ["
if redis.call('DEL', ARGV[1] .. 'on') == 0 then return 0 end
redis.call('DEL', ARGV[1] .. 'params')
return 1
"];
    /// Storage. ARGV: K, now, param, the value seen ('' for unset), new → 1 if
    /// it was still the value seen and is now the new one.
    SWAP_PARAM = ["
local key = ARGV[1] .. 'params'
if (redis.call('HGET', key, ARGV[3]) or '') ~= ARGV[4] then return 0 end
redis.call('SET', ARGV[1] .. 'on', 1)
redis.call('HSET', key, ARGV[3], ARGV[5])
return 1
"];
    /// Storage. ARGV: K, now, param, value → 1 if it was unset and is now set.
    SET_IF_ABSENT = ["
if redis.call('HSETNX', ARGV[1] .. 'params', ARGV[3], ARGV[4]) == 0 then return 0 end
redis.call('SET', ARGV[1] .. 'on', 1)
return 1
"];
    /// Storage. ARGV: K, now, param, delta → the new value (integers are
    /// stored in decimal, so HINCRBY works on them; its errors end the script
    /// before it writes anything).
    INCREMENT = ["
local v = redis.call('HINCRBY', ARGV[1] .. 'params', ARGV[3], ARGV[4])
redis.call('SET', ARGV[1] .. 'on', 1)
return v
"];

    /// Storage. ARGV: K, now, param, interval_ms → {1, ms to wait} after
    /// recording the moment reserved, {-1} if the parameter is not an integer.
    RESERVE = [NOW, "
local key, now = ARGV[1] .. 'params', now_ms()
local slot = now
local raw = redis.call('HGET', key, ARGV[3])
if raw then
  local last = tonumber(raw)
  if not last then return {-1} end
  slot = math.max(now, last + tonumber(ARGV[4]))
end
redis.call('HSET', key, ARGV[3], string.format('%d', slot))
redis.call('SET', ARGV[1] .. 'on', 1)
return {1, slot - now}
"];

    /// Client. ARGV: K, now, host, info, nil status → the login time. A live
    /// session keeps its login time, status and queue.
    LOGIN = [NOW, "
local K = ARGV[1]
local key, now = K .. 'session', now_ms()
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'login', now, 'status', ARGV[5], 'head', 0)
end
redis.call('HSET', key, 'host', ARGV[3], 'info', ARGV[4], 'visit', now, 'indexed', now)
return now
"];
    /// Client. ARGV: K, now → {0} if not logged in, {1, stacks it took leases on}.
    LOGOUT = [END_SESSION, "
return end_session(ARGV[1], function() return nil end)
"];
    /// Client. ARGV: K, now, idle_ms → {0} if not logged in, {1, stacks} if it
    /// ended for having been idle, {2, last visit} if it is still live.
    END_IF_IDLE = [NOW, END_SESSION, "
local limit = now_ms() - tonumber(ARGV[3])
return end_session(ARGV[1], function(key)
  local visit = tonumber(redis.call('HGET', key, 'visit'))
  if visit >= limit then return {2, visit} end
  return nil
end)
"];
    /// Client. ARGV: K, now, status ('' keeps it) → {-1} if not logged in,
    /// {0, index time} for no message, {1, index time, seq, message} (taken);
    /// the index time is 0 unless the namespace's index is due an update.
    VISIT = [NOW, SEEN_NOW, "
local K = ARGV[1]
local key = K .. 'session'
if redis.call('EXISTS', key) == 0 then return {-1} end
local index = seen_now(key, now_ms())
if ARGV[3] ~= '' then redis.call('HSET', key, 'status', ARGV[3]) end
local m = redis.call('LPOP', K .. 'msgs')
if not m then return {0, index} end
local seq = redis.call('HINCRBY', key, 'head', 1) - 1
return {1, index, seq, m}
"];
    /// Client. ARGV: K, now, seq, message → 1 given back (at the head if
    /// nothing was taken since, else at the end), 0 if not logged in.
    GIVE_BACK = ["
local key, msgs = ARGV[1] .. 'session', ARGV[1] .. 'msgs'
if redis.call('EXISTS', key) == 0 then return 0 end
if tonumber(redis.call('HGET', key, 'head')) == tonumber(ARGV[3]) + 1 then
  redis.call('LPUSH', msgs, ARGV[4])
  redis.call('HSET', key, 'head', ARGV[3])
else
  redis.call('RPUSH', msgs, ARGV[4])
end
redis.call('PUBLISH', ARGV[1] .. 'wake', 1)
return 1
"];
    /// Client. ARGV: K, now → -1 if not logged in, else the index time (0
    /// unless the namespace's index is due an update).
    SEEN = [NOW, SEEN_NOW, "
local key = ARGV[1] .. 'session'
if redis.call('EXISTS', key) == 0 then return -1 end
return seen_now(key, now_ms())
"];
    /// Client. ARGV: K, now, message, max queue → 1 queued, -1 not logged in,
    /// -2 full.
    SEND = ["
local K = ARGV[1]
if redis.call('EXISTS', K .. 'session') == 0 then return -1 end
local msgs = K .. 'msgs'
if redis.call('LLEN', msgs) >= tonumber(ARGV[4]) then return -2 end
redis.call('RPUSH', msgs, ARGV[3])
redis.call('PUBLISH', K .. 'wake', 1)
return 1
"];
    /// Client. ARGV: K, now → {0} none, {1, seq, message} (not taken).
    PEEK = ["
local key = ARGV[1] .. 'session'
local m = redis.call('LINDEX', ARGV[1] .. 'msgs', 0)
if not m or redis.call('EXISTS', key) == 0 then return {0} end
return {1, tonumber(redis.call('HGET', key, 'head')), m}
"];
    /// Client. ARGV: K, now, seq → 1 if message seq was the oldest and is now
    /// taken.
    DELIVERED = ["
local key = ARGV[1] .. 'session'
local head = redis.call('HGET', key, 'head')
if not head or tonumber(head) ~= tonumber(ARGV[3]) then return 0 end
if not redis.call('LPOP', ARGV[1] .. 'msgs') then return 0 end
redis.call('HINCRBY', key, 'head', 1)
return 1
"];
    /// Client. ARGV: K, now → {} if not logged in, else
    /// {host, login, visit, status, info, pending}.
    SESSION = ["
local key = ARGV[1] .. 'session'
if redis.call('EXISTS', key) == 0 then return {} end
local f = redis.call('HMGET', key, 'host', 'login', 'visit', 'status', 'info')
f[6] = redis.call('LLEN', ARGV[1] .. 'msgs')
return f
"];

    /// Namespace. ARGV: {NS}:, now, idle_ms, limit → {name, time, ...} of the
    /// clients the index has seen last before the idle limit.
    IDLE_CANDIDATES = [NOW, "
return redis.call('ZRANGEBYSCORE', ARGV[1] .. 'clients', '-inf',
  '(' .. (now_ms() - tonumber(ARGV[3])), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
"];
    /// Namespace. ARGV: {NS}:, now, name, time → drops the client from the
    /// index unless it was seen again since `time`.
    UNINDEX_CLIENT = ["
local t = redis.call('ZSCORE', ARGV[1] .. 'clients', ARGV[3])
if t and tonumber(t) == tonumber(ARGV[4]) then redis.call('ZREM', ARGV[1] .. 'clients', ARGV[3]) end
return 1
"];
}
