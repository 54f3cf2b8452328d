//! The Lua scripts of the Redis backend, one per operation: Redis runs each
//! atomically. Every script checks before it writes (Redis does not roll a
//! failing script back), reads the time from Redis (`TIME`), so masters with
//! different clocks agree on deadlines, and publishes a wake-up for what it
//! frees. Every script takes the key prefix `P` (the namespace with its hash
//! tag) as its first argument and the time to use instead of Redis's (or '')
//! as its second; its own arguments follow. Its one declared key, the prefix,
//! routes it to the right node of a cluster.
//!
//! Keys, under `P`: `stacks` (ZSET of names: existence, since Redis drops an
//! empty list), `items:S` (LIST, right end on top), `leases:S` (HASH id →
//! lease), `due` (ZSET `id:S` → deadline), `owned:C` (SET of `id:S` a client
//! holds), `storages` (ZSET), `params:N` (HASH), `clients` (ZSET name → last
//! visit), `session:C` (HASH), `msgs:C` (LIST, left end oldest). A lease is
//! packed as `struct.pack('>i8I4', deadline, #owner) .. owner .. item`.

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
local function give_back_lease(P, id, s, push)
  local lk = P .. 'leases:' .. s
  local rec = redis.call('HGET', lk, id)
  local member = id .. ':' .. s
  redis.call('ZREM', P .. 'due', member)
  if not rec then return false end
  local _, olen, pos = struct.unpack('>i8I4', rec)
  redis.call('HDEL', lk, id)
  if olen > 0 then
    redis.call('SREM', P .. 'owned:' .. string.sub(rec, pos, pos + olen - 1), member)
  end
  if push then
    redis.call('RPUSH', P .. 'items:' .. s, string.sub(rec, pos + olen))
    redis.call('PUBLISH', P .. 'wake:s:' .. s, 1)
  end
  return true
end
";

/// Ends a session: drops it and its messages, gives its leases back; the
/// stacks that got items back, or nil if it was not logged in.
const END_SESSION: &str = "
local function end_session(P, c)
  if redis.call('DEL', P .. 'session:' .. c) == 0 then return nil end
  redis.call('ZREM', P .. 'clients', c)
  redis.call('DEL', P .. 'msgs:' .. c)
  local freed = {}
  local owned = P .. 'owned:' .. c
  for _, member in ipairs(redis.call('SMEMBERS', owned)) do
    local id, s = string.sub(member, 1, 16), string.sub(member, 18)
    if give_back_lease(P, id, s, true) then freed[#freed + 1] = s end
  end
  redis.call('DEL', owned)
  redis.call('PUBLISH', P .. 'wake:c:' .. c, 0)
  return freed
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
    /// ARGV: P, now, name, item... → the new size. Creates the stack.
    PUSH = ["
local P, s = ARGV[1], ARGV[3]
redis.call('ZADD', P .. 'stacks', 0, s)
local key = P .. 'items:' .. s
local len = redis.call('LLEN', key)
for i = 4, #ARGV, 1000 do
  len = redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV > 3 then redis.call('PUBLISH', P .. 'wake:s:' .. s, #ARGV - 3) end
return len
"];
    /// ARGV: P, now, name, count, budget → {0} for no stack, {1, items top first}.
    POP = ["
local P, s = ARGV[1], ARGV[3]
if not redis.call('ZSCORE', P .. 'stacks', s) then return {0} end
local key, n, budget = P .. 'items:' .. s, tonumber(ARGV[4]), tonumber(ARGV[5])
local out, bytes = {}, 0
while #out < n and (#out == 0 or bytes < budget) do
  local item = redis.call('RPOP', key)
  if not item then break end
  out[#out + 1] = item
  bytes = bytes + #item
end
return {1, out}
"];
    /// ARGV: P, now, name, id, lease_ms, owner ('' for none) → {0} if there is no
    /// item, {-1} if the id is taken, {1, deadline, item}.
    TAKE = [NOW, "
local P, s, id, owner = ARGV[1], ARGV[3], ARGV[4], ARGV[6]
local leases = P .. 'leases:' .. s
if redis.call('HEXISTS', leases, id) == 1 then return {-1} end
local item = redis.call('RPOP', P .. 'items:' .. s)
if not item then return {0} end
local deadline = now_ms() + tonumber(ARGV[5])
redis.call('HSET', leases, id, struct.pack('>i8I4', deadline, #owner) .. owner .. item)
redis.call('ZADD', P .. 'due', deadline, id .. ':' .. s)
if owner ~= '' then redis.call('SADD', P .. 'owned:' .. owner, id .. ':' .. s) end
return {1, deadline, item}
"];
    /// ARGV: P, now, name, id, release ('1' puts the item back) → 1 if the lease
    /// was held.
    FINISH = [GIVE_BACK_LEASE, "
if give_back_lease(ARGV[1], ARGV[4], ARGV[3], ARGV[5] == '1') then return 1 end
return 0
"];
    /// ARGV: P, now, limit → {due leases looked at, stacks that got items back}.
    EXPIRE = [NOW, GIVE_BACK_LEASE, "
local P = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[3]))
local stacks = {}
for _, member in ipairs(due) do
  local id, s = string.sub(member, 1, 16), string.sub(member, 18)
  if give_back_lease(P, id, s, true) then stacks[#stacks + 1] = s end
end
return {#due, stacks}
"];
    /// ARGV: P, now, name → the number of items, -1 for no stack.
    SIZE = ["
if not redis.call('ZSCORE', ARGV[1] .. 'stacks', ARGV[3]) then return -1 end
return redis.call('LLEN', ARGV[1] .. 'items:' .. ARGV[3])
"];
    /// ARGV: P, now, name → how many items there were, -1 for no stack.
    TRUNCATE = ["
if not redis.call('ZSCORE', ARGV[1] .. 'stacks', ARGV[3]) then return -1 end
local key = ARGV[1] .. 'items:' .. ARGV[3]
local n = redis.call('LLEN', key)
redis.call('DEL', key)
return n
"];
    /// ARGV: P, now, name → 1, or 0 for no stack. Its leases go with it.
    REMOVE_STACK = [GIVE_BACK_LEASE, "
local P, s = ARGV[1], ARGV[3]
if redis.call('ZREM', P .. 'stacks', s) == 0 then return 0 end
for _, id in ipairs(redis.call('HKEYS', P .. 'leases:' .. s)) do
  give_back_lease(P, id, s, false)
end
redis.call('DEL', P .. 'items:' .. s, P .. 'leases:' .. s)
return 1
"];

    /// ARGV: P, now, name, param, value, ... → 1. Creates the storage.
    SET_PARAMS = ["
redis.call('ZADD', ARGV[1] .. 'storages', 0, ARGV[3])
local key = ARGV[1] .. 'params:' .. ARGV[3]
for i = 4, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return 1
"];
    /// ARGV: P, now, name, param → {-1} for no storage, {0} unset, {1, value}.
    GET_PARAM = ["
if not redis.call('ZSCORE', ARGV[1] .. 'storages', ARGV[3]) then return {-1} end
local v = redis.call('HGET', ARGV[1] .. 'params:' .. ARGV[3], ARGV[4])
if not v then return {0} end
return {1, v}
"];
    /// ARGV: P, now, name → {-1} for no storage, {1, {param, value, ...}}.
    PARAMS = ["
if not redis.call('ZSCORE', ARGV[1] .. 'storages', ARGV[3]) then return {-1} end
return {1, redis.call('HGETALL', ARGV[1] .. 'params:' .. ARGV[3])}
"];
    /// ARGV: P, now, name, param → 1 removed, 0 unset, -1 no storage.
    REMOVE_PARAM = ["
if not redis.call('ZSCORE', ARGV[1] .. 'storages', ARGV[3]) then return -1 end
return redis.call('HDEL', ARGV[1] .. 'params:' .. ARGV[3], ARGV[4])
"];
    /// ARGV: P, now, name → 1, or 0 for no storage.
    REMOVE_STORAGE = ["
if redis.call('ZREM', ARGV[1] .. 'storages', ARGV[3]) == 0 then return 0 end
redis.call('DEL', ARGV[1] .. 'params:' .. ARGV[3])
return 1
"];
    /// ARGV: P, now, name, param, the value seen ('' for unset), new → 1 if it was
    /// still the value seen and is now the new one.
    SWAP_PARAM = ["
local key = ARGV[1] .. 'params:' .. ARGV[3]
if (redis.call('HGET', key, ARGV[4]) or '') ~= ARGV[5] then return 0 end
redis.call('ZADD', ARGV[1] .. 'storages', 0, ARGV[3])
redis.call('HSET', key, ARGV[4], ARGV[6])
return 1
"];
    /// ARGV: P, now, name, param, value → 1 if it was unset and is now set.
    SET_IF_ABSENT = ["
if redis.call('HSETNX', ARGV[1] .. 'params:' .. ARGV[3], ARGV[4], ARGV[5]) == 0 then return 0 end
redis.call('ZADD', ARGV[1] .. 'storages', 0, ARGV[3])
return 1
"];
    /// ARGV: P, now, name, param, delta → the new value (integers are stored in
    /// decimal, so HINCRBY works on them; its errors end the script before it
    /// writes anything).
    INCREMENT = ["
local v = redis.call('HINCRBY', ARGV[1] .. 'params:' .. ARGV[3], ARGV[4], ARGV[5])
redis.call('ZADD', ARGV[1] .. 'storages', 0, ARGV[3])
return v
"];

    /// ARGV: P, now, name, host, info, nil status → 1. A live session keeps its
    /// login time, status and queue.
    LOGIN = [NOW, "
local P, c = ARGV[1], ARGV[3]
local key, now = P .. 'session:' .. c, now_ms()
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'login', now, 'status', ARGV[6], 'head', 0)
end
redis.call('HSET', key, 'host', ARGV[4], 'info', ARGV[5], 'visit', now)
redis.call('ZADD', P .. 'clients', now, c)
return 1
"];
    /// ARGV: P, now, name → {0} if not logged in, {1, stacks that got items back}.
    LOGOUT = [GIVE_BACK_LEASE, END_SESSION, "
local freed = end_session(ARGV[1], ARGV[3])
if not freed then return {0} end
return {1, freed}
"];
    /// ARGV: P, now, idle_ms, limit → {sessions looked at, ended names, stacks}.
    END_IDLE = [NOW, GIVE_BACK_LEASE, END_SESSION, "
local P = ARGV[1]
local idle = redis.call('ZRANGEBYSCORE', P .. 'clients', '-inf', '(' .. (now_ms() - tonumber(ARGV[3])),
  'LIMIT', 0, tonumber(ARGV[4]))
local ended, stacks = {}, {}
for _, c in ipairs(idle) do
  local freed = end_session(P, c)
  if freed then
    ended[#ended + 1] = c
    for _, s in ipairs(freed) do stacks[#stacks + 1] = s end
  end
end
return {#idle, ended, stacks}
"];
    /// ARGV: P, now, name, status ('' keeps it) → {-1} if not logged in, {0} no
    /// message, {1, seq, message} (taken).
    VISIT = [NOW, "
local P, c = ARGV[1], ARGV[3]
local key, now = P .. 'session:' .. c, now_ms()
if redis.call('EXISTS', key) == 0 then return {-1} end
redis.call('HSET', key, 'visit', now)
if ARGV[4] ~= '' then redis.call('HSET', key, 'status', ARGV[4]) end
redis.call('ZADD', P .. 'clients', now, c)
local m = redis.call('LPOP', P .. 'msgs:' .. c)
if not m then return {0} end
local seq = redis.call('HINCRBY', key, 'head', 1) - 1
return {1, seq, m}
"];
    /// ARGV: P, now, name, seq, message → 1 given back (at the head if nothing was
    /// taken since, else at the end), 0 if not logged in.
    GIVE_BACK = ["
local key, msgs = ARGV[1] .. 'session:' .. ARGV[3], ARGV[1] .. 'msgs:' .. ARGV[3]
if redis.call('EXISTS', key) == 0 then return 0 end
if tonumber(redis.call('HGET', key, 'head')) == tonumber(ARGV[4]) + 1 then
  redis.call('LPUSH', msgs, ARGV[5])
  redis.call('HSET', key, 'head', ARGV[4])
else
  redis.call('RPUSH', msgs, ARGV[5])
end
redis.call('PUBLISH', ARGV[1] .. 'wake:c:' .. ARGV[3], 1)
return 1
"];
    /// ARGV: P, now, name → 1, or 0 if not logged in.
    SEEN = [NOW, "
local key, now = ARGV[1] .. 'session:' .. ARGV[3], now_ms()
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'visit', now)
redis.call('ZADD', ARGV[1] .. 'clients', now, ARGV[3])
return 1
"];
    /// ARGV: P, now, name, message, max queue → 1 queued, -1 not logged in, -2 full.
    SEND = ["
local P, c = ARGV[1], ARGV[3]
if redis.call('EXISTS', P .. 'session:' .. c) == 0 then return -1 end
local msgs = P .. 'msgs:' .. c
if redis.call('LLEN', msgs) >= tonumber(ARGV[5]) then return -2 end
redis.call('RPUSH', msgs, ARGV[4])
redis.call('PUBLISH', P .. 'wake:c:' .. c, 1)
return 1
"];
    /// ARGV: P, now, message, max queue → the names that got it.
    BROADCAST = ["
local P, got = ARGV[1], {}
for _, c in ipairs(redis.call('ZRANGE', P .. 'clients', 0, -1)) do
  local msgs = P .. 'msgs:' .. c
  if redis.call('LLEN', msgs) < tonumber(ARGV[4]) then
    redis.call('RPUSH', msgs, ARGV[3])
    redis.call('PUBLISH', P .. 'wake:c:' .. c, 1)
    got[#got + 1] = c
  end
end
return got
"];
    /// ARGV: P, now, name → {0} none, {1, seq, message} (not taken).
    PEEK = ["
local key = ARGV[1] .. 'session:' .. ARGV[3]
local m = redis.call('LINDEX', ARGV[1] .. 'msgs:' .. ARGV[3], 0)
if not m or redis.call('EXISTS', key) == 0 then return {0} end
return {1, tonumber(redis.call('HGET', key, 'head')), m}
"];
    /// ARGV: P, now, name, seq → 1 if message seq was the oldest and is now taken.
    DELIVERED = ["
local key = ARGV[1] .. 'session:' .. ARGV[3]
local head = redis.call('HGET', key, 'head')
if not head or tonumber(head) ~= tonumber(ARGV[4]) then return 0 end
if not redis.call('LPOP', ARGV[1] .. 'msgs:' .. ARGV[3]) then return 0 end
redis.call('HINCRBY', key, 'head', 1)
return 1
"];
    /// ARGV: P, now, name... → per name: {} if not logged in, else
    /// {host, login, visit, status, info, pending}.
    SESSIONS = ["
local P, out = ARGV[1], {}
for i = 3, #ARGV do
  local key = P .. 'session:' .. ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    out[#out + 1] = {}
  else
    local f = redis.call('HMGET', key, 'host', 'login', 'visit', 'status', 'info')
    f[6] = redis.call('LLEN', P .. 'msgs:' .. ARGV[i])
    out[#out + 1] = f
  end
end
return out
"];
}
