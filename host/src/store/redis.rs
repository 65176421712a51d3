//! The Redis backend: one store shared by every wasmhost process on a Redis.
//!
//! This is how sessions outgrow one machine, as express-session apps do with
//! connect-redis: each entry is a plain Redis string under the guest's key (the
//! session layer writes `sess:<id>`), its TTL a Redis TTL in milliseconds, so
//! Redis expires entries itself and no host sweeps.
//!
//! One multiplexed connection per host, managed by the `redis` crate's
//! [`ConnectionManager`], carries every task's commands and reconnects by
//! itself when Redis comes back. Every command is bounded by the store timeout,
//! so a lost Redis makes store calls fail with [`StoreError::Unavailable`]
//! (which the SDK's session layer answers with 503) instead of hanging the
//! request. The atomic operations are single Redis commands (`SET NX`,
//! `INCRBY`) or Lua scripts, which Redis runs atomically.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::io::tcp::TcpSettings;
use ::redis::{
    Client, Cmd, FromRedisValue, IntoConnectionInfo, RedisError, Script, ScriptInvocation,
};

use super::{Backend, LONGEST_TTL, Limits, StoreError};
use crate::log_text::one_line;

/// `store-touch` with no TTL: PERSIST answers 0 both for a missing key and
/// for a key that had no TTL, but touch must tell only the first apart.
const TOUCH_PERSIST: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1
";

/// `store-compare-and-swap`. ARGV: has-expected (0/1), expected, has-new
/// (0/1), new, TTL in ms (0: none).
const COMPARE_AND_SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[1])
elseif ARGV[5] == '0' then
  redis.call('SET', KEYS[1], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
end
return 1
";

/// `store-read` of a key whose GETRANGE was empty (a missing key or an empty
/// value; see `read`): the value, unless it is longer than ARGV[1] bytes
/// (then -1), so a value another client stored past the limit is never
/// fetched.
const READ_BOUNDED: &str = r"
if redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[1]) then return -1 end
return redis.call('GET', KEYS[1])
";

/// A handle to one Redis, shared by all tasks of a host.
pub struct RedisStore {
    address: String,
    connection: ConnectionManager,
    limits: Limits,
    timeout: Duration,
    read_bounded: Script,
    touch_persist: Script,
    compare_and_swap: Script,
}

/// Whether a command changes the store: a write that timed out may have
/// been applied, and its error says so.
#[derive(Clone, Copy)]
enum Effect {
    Reads,
    Writes,
}

/// Why the host could not start on a Redis store. Neither message repeats the
/// URL, which may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid Redis URL: {reason}")]
    BadUrl { reason: String },
    #[error("cannot reach Redis at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://host:port[/db]`) and checks it
    /// answers, all within `timeout`, so a host never starts on a Redis it
    /// cannot use.
    pub async fn connect(
        url: &str,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let bad_url = |error: RedisError| ConnectError::BadUrl {
            reason: one_line(&error),
        };
        let info = url.into_connection_info().map_err(bad_url)?;
        let addr = info.addr().to_string();
        // Small commands go out at once (no Nagle), and a connection whose
        // sent commands go unacknowledged (Redis gone without closing it, as
        // after a failover or a dropped NAT entry) is closed by the kernel,
        // so the next command reconnects instead of timing out for minutes.
        let tcp = TcpSettings::default()
            .set_nodelay(true)
            .set_user_timeout(timeout.max(Duration::from_secs(1)) * 2);
        let client = Client::open(info.set_tcp_settings(tcp)).map_err(bad_url)?;
        let unreachable = |reason: String| ConnectError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        // Reconnection is retried a few times right after a loss, quickly;
        // after that every failed command starts a new attempt, so a Redis
        // that comes back after minutes is found again too. Commands get no
        // response timeout of the crate's: each is bounded by the store's
        // own (`bounded`), which also covers waiting for a reconnection, and
        // one timer per command is enough.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None)
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(timeout);
        let connecting = async {
            let mut connection = ConnectionManager::new_with_config(client, config).await?;
            ::redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await?;
            Ok::<_, RedisError>(connection)
        };
        let connection = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            })?
            .map_err(|error| unreachable(one_line(&error)))?;
        Ok(RedisStore {
            address: addr,
            connection,
            limits,
            timeout,
            read_bounded: Script::new(READ_BOUNDED),
            touch_persist: Script::new(TOUCH_PERSIST),
            compare_and_swap: Script::new(COMPARE_AND_SWAP),
        })
    }

    /// Where the Redis is (`host:port`, no password).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether Redis answers a PING within the store timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&::redis::cmd("PING"), Effect::Reads)
            .await
            .map(drop)
    }

    /// Runs one command, bounded by the store timeout.
    async fn query<T: FromRedisValue>(
        &self,
        command: &Cmd,
        effect: Effect,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let running = async move { command.query_async::<T>(&mut connection).await };
        self.bounded(running, store_error, effect).await
    }

    /// Runs one script, bounded by the store timeout.
    async fn invoke<T: FromRedisValue>(
        &self,
        invocation: ScriptInvocation<'_>,
        effect: Effect,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let running = async move { invocation.invoke_async(&mut connection).await };
        self.bounded(running, store_error, effect).await
    }

    /// Waits for `command` at most the store timeout; its failure (as
    /// `classify` sees it), or running out of time, is the backend's error.
    async fn bounded<T>(
        &self,
        command: impl Future<Output = Result<T, RedisError>>,
        classify: fn(&RedisError, Effect) -> StoreError,
        effect: Effect,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(&error, effect)),
            Err(_) => {
                let waited = humantime::format_duration(self.timeout);
                Err(StoreError::Unavailable(match effect {
                    Effect::Reads => format!("Redis did not answer within {waited}"),
                    Effect::Writes => format!(
                        "Redis did not answer within {waited}; the write was sent and may or may not have been applied"
                    ),
                }))
            }
        }
    }
}

/// A Redis error as the guest sees it. A write lost on the way back (no
/// answer in time, the connection gone after sending) may have been applied,
/// and the error says so.
fn store_error(error: &RedisError, effect: Effect) -> StoreError {
    let unknown_outcome = matches!(effect, Effect::Writes)
        && (error.is_timeout() || error.is_connection_dropped())
        && !error.is_connection_refusal();
    match error.code() {
        Some("OOM") => StoreError::Full,
        _ if unknown_outcome => StoreError::Unavailable(format!(
            "Redis: {}; the write was sent and may or may not have been applied",
            one_line(error)
        )),
        _ => StoreError::Unavailable(format!("Redis: {}", one_line(error))),
    }
}

/// An INCRBY error: Redis refusing the stored value or the sum, or else as
/// any command's.
fn increment_error(error: &RedisError, effect: Effect) -> StoreError {
    let detail = error.detail().unwrap_or_default();
    match error.code() {
        Some("ERR") if detail.contains("not an integer") || detail.contains("would overflow") => {
            StoreError::NotAnInteger
        }
        _ => store_error(error, effect),
    }
}

/// A TTL as Redis's PX takes it: whole milliseconds, at least 1 (Redis refuses
/// 0, and an entry that expires at once is as good as one that lives 1 ms);
/// none for none or for a TTL past [`LONGEST_TTL`].
fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.filter(|ttl| *ttl <= LONGEST_TTL)
        .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// `SET key value [PX ttl] [NX]`.
fn set_command(key: &str, value: &str, ttl: Option<Duration>, only_if_absent: bool) -> Cmd {
    let mut command = ::redis::cmd("SET");
    command.arg(key).arg(value);
    if let Some(ttl) = ttl_ms(ttl) {
        command.arg("PX").arg(ttl);
    }
    if only_if_absent {
        command.arg("NX");
    }
    command
}

impl Backend for RedisStore {
    async fn read(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.limits.check_key(key)?;
        let limit = self.limits.max_value_bytes;
        // GETRANGE answers at most one byte past the limit, so a longer value
        // is never fetched, without running a script for every read (a
        // script costs Redis, which may share the host's CPUs, more than
        // the GET itself). It answers an empty string both for a missing key
        // and for an empty value: only then does the script tell them apart.
        let mut range = ::redis::cmd("GETRANGE");
        range.arg(key).arg(0).arg(limit);
        let value: ::redis::Value = self.query(&range, Effect::Reads).await?;
        let value = match value {
            ::redis::Value::BulkString(bytes) if bytes.is_empty() => {
                let mut invocation = self.read_bounded.key(key);
                invocation.arg(limit);
                self.invoke(invocation, Effect::Reads).await?
            }
            other => other,
        };
        match value {
            ::redis::Value::Nil => Ok(None),
            ::redis::Value::Int(_) => Err(StoreError::ValueTooLarge { limit }),
            ::redis::Value::BulkString(bytes) if bytes.len() > limit => {
                Err(StoreError::ValueTooLarge { limit })
            }
            ::redis::Value::BulkString(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| StoreError::NotUtf8),
            other => Err(StoreError::Unavailable(format!(
                "Redis answered a read with {}",
                one_line(&format!("{other:?}"))
            ))),
        }
    }

    async fn set(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.limits.check_entry(&key, &value)?;
        self.query::<()>(&set_command(&key, &value, ttl, false), Effect::Writes)
            .await
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.limits.check_key(key)?;
        self.query::<()>(::redis::cmd("DEL").arg(key), Effect::Writes)
            .await
    }

    async fn touch(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.limits.check_key(key)?;
        match ttl_ms(ttl) {
            Some(ttl) => {
                self.query(::redis::cmd("PEXPIRE").arg(key).arg(ttl), Effect::Writes)
                    .await
            }
            None => {
                self.invoke(self.touch_persist.key(key), Effect::Writes)
                    .await
            }
        }
    }

    async fn set_if_absent(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.limits.check_entry(&key, &value)?;
        // SET NX answers OK when it stored the value and nil when it did not.
        let stored: Option<String> = self
            .query(&set_command(&key, &value, ttl, true), Effect::Writes)
            .await?;
        Ok(stored.is_some())
    }

    async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.limits.check_optional_entry(&key, new.as_deref())?;
        let flag = |present: bool| if present { "1" } else { "0" };
        let mut invocation = self.compare_and_swap.key(&key);
        invocation
            .arg(flag(expected.is_some()))
            .arg(expected.as_deref().unwrap_or_default())
            .arg(flag(new.is_some()))
            .arg(new.as_deref().unwrap_or_default())
            .arg(ttl_ms(ttl).unwrap_or(0));
        self.invoke(invocation, Effect::Writes).await
    }

    async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        self.limits.check_key(&key)?;
        let mut connection = self.connection.clone();
        let mut command = ::redis::cmd("INCRBY");
        command.arg(&key).arg(delta);
        let running = async move { command.query_async(&mut connection).await };
        self.bounded(running, increment_error, Effect::Writes).await
    }
}
