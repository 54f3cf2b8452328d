//! The registry's table in Redis, so that several registries serve one view
//! and any of them may die without losing a registration.
//!
//! Every key is under one hash tag, `{NAMESPACE:r}:` (a registry's table is
//! small, and one slot keeps every operation one atomic script, on a Redis
//! Cluster too): `inst` (HASH id → the instance, encoded), `meta` (HASH id →
//! `host \n first-registered-ms \n name \n name ...`, what the scripts need
//! without decoding an instance; names and hosts hold no control characters),
//! `exp` (ZSET id → expiry in ms), `n:NAME` (SET of the ids serving NAME),
//! `names` (SET of the names with any id) and `hosts` (HASH host → how many
//! instances it registered). Times come from the registry that calls, as in
//! the table in memory.

use super::{damaged, unavailable, Con, RedisConfig, RedisError};
use crate::backend::Answer;
use crate::services::registry::{Bounds, Instance, RegistryStore};
use redis::{Script, Value as Reply};
use rpcs_core::Fault;
use std::net::IpAddr;
use std::sync::LazyLock;

/// Lua helpers every script shares: splitting a `meta` entry, and removing
/// one instance from every index.
const COMMON: &str = r#"
local K = KEYS[1]
local function split(s)
  local out = {}
  for part in string.gmatch(s, '[^\n]+') do out[#out + 1] = part end
  return out
end
local function remove(id)
  local meta = redis.call('HGET', K .. 'meta', id)
  if not meta then return false end
  local m = split(meta)
  for i = 3, #m do
    redis.call('SREM', K .. 'n:' .. m[i], id)
    if redis.call('SCARD', K .. 'n:' .. m[i]) == 0 then redis.call('SREM', K .. 'names', m[i]) end
  end
  if redis.call('HINCRBY', K .. 'hosts', m[1], -1) <= 0 then redis.call('HDEL', K .. 'hosts', m[1]) end
  redis.call('HDEL', K .. 'inst', id)
  redis.call('HDEL', K .. 'meta', id)
  redis.call('ZREM', K .. 'exp', id)
  return m
end
"#;

/// ARGV: id, encoded instance, expires, now, host, total, per_name,
/// per_host, names... Returns the first registration time, or an error
/// naming the bound that refused a new instance.
const UPSERT: &str = r#"
local id, blob, expires, now, host = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local total, per_name, per_host = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local first = now
local old = remove(id)
if old then
  first = old[2]
else
  if redis.call('HLEN', K .. 'inst') >= total then return {'full', 'in all', total} end
  if tonumber(redis.call('HGET', K .. 'hosts', host) or '0') >= per_host then
    return {'full', 'from ' .. host, per_host}
  end
  for i = 9, #ARGV do
    if redis.call('SCARD', K .. 'n:' .. ARGV[i]) >= per_name then
      return {'full', 'under "' .. ARGV[i] .. '"', per_name}
    end
  end
end
local meta = host .. '\n' .. first
for i = 9, #ARGV do
  meta = meta .. '\n' .. ARGV[i]
  redis.call('SADD', K .. 'n:' .. ARGV[i], id)
  redis.call('SADD', K .. 'names', ARGV[i])
end
redis.call('HINCRBY', K .. 'hosts', host, 1)
redis.call('HSET', K .. 'inst', id, blob)
redis.call('HSET', K .. 'meta', id, meta)
redis.call('ZADD', K .. 'exp', expires, id)
return {'ok', first}
"#;

/// ARGV: ids... Returns how many were there.
const REMOVE: &str = r#"
local n = 0
for i = 1, #ARGV do
  if remove(ARGV[i]) then n = n + 1 end
end
return n
"#;

/// ARGV: name, now. Returns instance, first, instance, first, ... for the
/// live ids serving the name.
const LOOKUP: &str = r#"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', K .. 'n:' .. ARGV[1])) do
  local exp = redis.call('ZSCORE', K .. 'exp', id)
  if exp and tonumber(exp) > tonumber(ARGV[2]) then
    local m = split(redis.call('HGET', K .. 'meta', id))
    out[#out + 1] = redis.call('HGET', K .. 'inst', id)
    out[#out + 1] = m[2]
  end
end
return out
"#;

/// ARGV: now, host or ''. Returns name, count, name, count, ...
const NAMES: &str = r#"
local now, host = tonumber(ARGV[1]), ARGV[2]
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', K .. 'names')) do
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', K .. 'n:' .. name)) do
    local exp = redis.call('ZSCORE', K .. 'exp', id)
    if exp and tonumber(exp) > now then
      if host == '' or split(redis.call('HGET', K .. 'meta', id))[1] == host then n = n + 1 end
    end
  end
  if n > 0 then out[#out + 1] = name; out[#out + 1] = n end
end
return out
"#;

/// ARGV: now, most. Removes up to `most` expired instances; how many.
const PRUNE: &str = r#"
local due = redis.call('ZRANGEBYSCORE', K .. 'exp', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do remove(id) end
return #due
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}{body}"))
}

static UPSERT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(UPSERT));
static REMOVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REMOVE));
static LOOKUP_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(LOOKUP));
static NAMES_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(NAMES));
static PRUNE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PRUNE));

/// How many expired instances one prune script removes; the store loops.
const PRUNE_BATCH: usize = 500;

/// The registry's table in Redis; see the module documentation.
pub struct RedisRegistry {
    con: Con,
    /// `{NAMESPACE:r}:`.
    key: String,
}

impl RedisRegistry {
    /// Connects to the Redis server (or cluster) of `config`.
    pub async fn connect(config: &RedisConfig) -> Result<RedisRegistry, RedisError> {
        super::check_namespace(&config.namespace)?;
        let con = Con::open(config)
            .await
            .map_err(|source| RedisError::Connect {
                url: super::redacted(&config.url),
                source,
            })?;
        Ok(RedisRegistry {
            con,
            key: format!("{{{}:r}}:", config.namespace),
        })
    }

    async fn run(&self, script: &Script, args: Vec<Vec<u8>>) -> Result<Reply, Fault> {
        let mut call = script.prepare_invoke();
        call.key(self.key.as_bytes());
        for a in args {
            call.arg(a);
        }
        call.invoke_async(&mut self.con.clone())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn remove_ids(&self, ids: Vec<String>) -> Result<usize, Fault> {
        if ids.is_empty() {
            return Ok(0);
        }
        let reply = self
            .run(
                &REMOVE_SCRIPT,
                ids.into_iter().map(String::into_bytes).collect(),
            )
            .await?;
        count(&reply)
    }
}

fn count(reply: &Reply) -> Result<usize, Fault> {
    match reply {
        Reply::Int(n) => usize::try_from(*n).map_err(|_| damaged("a negative count")),
        _ => Err(damaged("not a count")),
    }
}

fn text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Reply::SimpleString(s) => Some(s.clone()),
        Reply::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn items(reply: Reply) -> Result<Vec<Reply>, Fault> {
    match reply {
        Reply::Array(items) => Ok(items),
        _ => Err(damaged("not a list")),
    }
}

impl RegistryStore for RedisRegistry {
    fn upsert(&self, instance: Instance, bounds: Bounds) -> Answer<'_, ()> {
        Box::pin(async move {
            let mut args = vec![
                instance.id.clone().into_bytes(),
                instance.encode(),
                instance.expires_ms.to_string().into_bytes(),
                instance.first_ms.to_string().into_bytes(),
                instance.host.to_string().into_bytes(),
                bounds.total.to_string().into_bytes(),
                bounds.per_name.to_string().into_bytes(),
                bounds.per_host.to_string().into_bytes(),
            ];
            args.extend(instance.names.iter().map(|n| n.clone().into_bytes()));
            let reply = items(self.run(&UPSERT_SCRIPT, args).await?)?;
            match reply.as_slice() {
                [status, _] if text(status).as_deref() == Some("ok") => Ok(()),
                [status, what, limit] if text(status).as_deref() == Some("full") => {
                    Err(Fault::named(
                        "RegistryFullError",
                        format!(
                            "the registry holds its limit of {} instances {}",
                            text(limit).unwrap_or_default(),
                            text(what).unwrap_or_default()
                        ),
                    ))
                }
                _ => Err(damaged("an unexpected registration answer")),
            }
        })
    }

    fn remove(&self, id: String) -> Answer<'_, bool> {
        Box::pin(async move { Ok(self.remove_ids(vec![id]).await? > 0) })
    }

    fn remove_rpyc(&self, host: IpAddr, port: u16) -> Answer<'_, usize> {
        Box::pin(async move {
            // RPyC's ids end in `@HOST:PORT`: find them with a scan of the
            // instances (glob characters in the address escaped), then remove
            // them, each atomically.
            let suffix = format!("@{host}:{port}");
            let pattern: String = format!("rpyc:*{suffix}")
                .chars()
                .flat_map(|c| match c {
                    '[' | ']' | '?' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let mut ids = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                    .arg(format!("{}inst", self.key))
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut self.con.clone())
                    .await
                    .map_err(|e| unavailable(&e))?;
                // HSCAN answers field, value, field, value, ...
                ids.extend(
                    batch
                        .into_iter()
                        .step_by(2)
                        .filter_map(|id| String::from_utf8(id).ok())
                        .filter(|id| id.ends_with(&suffix)),
                );
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            self.remove_ids(ids).await
        })
    }

    fn lookup(&self, name: String, now_ms: i64) -> Answer<'_, Vec<Instance>> {
        Box::pin(async move {
            let reply = self
                .run(
                    &LOOKUP_SCRIPT,
                    vec![name.into_bytes(), now_ms.to_string().into_bytes()],
                )
                .await?;
            let reply = items(reply)?;
            let mut found = Vec::with_capacity(reply.len() / 2);
            for pair in reply.chunks(2) {
                let [Reply::BulkString(blob), first] = pair else {
                    return Err(damaged("an instance without its time"));
                };
                let mut instance =
                    Instance::decode(blob).ok_or_else(|| damaged("an undecodable instance"))?;
                if let Some(ms) = text(first).and_then(|t| t.parse().ok()) {
                    instance.first_ms = ms;
                }
                found.push(instance);
            }
            found.sort_by(|a, b| (a.first_ms, &a.id).cmp(&(b.first_ms, &b.id)));
            Ok(found)
        })
    }

    fn names(&self, host: Option<IpAddr>, now_ms: i64) -> Answer<'_, Vec<(String, usize)>> {
        Box::pin(async move {
            let host = host.map(|h| h.to_string()).unwrap_or_default();
            let reply = self
                .run(
                    &NAMES_SCRIPT,
                    vec![now_ms.to_string().into_bytes(), host.into_bytes()],
                )
                .await?;
            let reply = items(reply)?;
            let mut names = Vec::with_capacity(reply.len() / 2);
            for pair in reply.chunks(2) {
                let [name, n] = pair else {
                    return Err(damaged("a name without its count"));
                };
                let name = text(name).ok_or_else(|| damaged("a name that is not text"))?;
                names.push((name, count(n)?));
            }
            names.sort();
            Ok(names)
        })
    }

    fn prune(&self, now_ms: i64) -> Answer<'_, usize> {
        Box::pin(async move {
            let mut total = 0;
            loop {
                let args = vec![
                    now_ms.to_string().into_bytes(),
                    PRUNE_BATCH.to_string().into_bytes(),
                ];
                let n = count(&self.run(&PRUNE_SCRIPT, args).await?)?;
                total += n;
                if n < PRUNE_BATCH {
                    return Ok(total);
                }
            }
        })
    }
}
