//! API keys and per-key rate limits, checked in a tonic interceptor before any handler runs.
//!
//! Only the SHA-256 of each key is configured and kept; a presented key is hashed and looked up.
//! Each key has a token bucket (`rate_per_second`, `burst`): every call takes one token, and
//! every message of a `ClassifyStream` after its first takes one more, so a stream cannot
//! score past the limit.
//! The key table is replaced on reload (SIGHUP) without a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::config::ApiKeyConfig;
use crate::error::RequestError;
use crate::metrics::Metrics;

/// The id of the key a request authenticated with, stored in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(pub String);

/// `burst` tokens, refilled at `rate_per_second`; the one rate limiter of the service (API-key
/// calls here, report budgets in `report_budget`).
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate_per_second: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    fn new(rate_per_second: f64, burst: u32) -> Self {
        Self::full_at(rate_per_second, burst, Instant::now())
    }

    /// A full bucket whose refill counts from `now`.
    pub(crate) fn full_at(rate_per_second: f64, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        TokenBucket {
            rate_per_second,
            capacity,
            tokens: capacity,
            refilled_at: now,
        }
    }

    /// Takes one token at `now`; false when none is left.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_second).min(self.capacity);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct KeyEntry {
    id: String,
    rate_per_second: f64,
    burst: u32,
    bucket: Mutex<TokenBucket>,
    /// Set when a reload removes the key: streams opened with it stop being served.
    revoked: AtomicBool,
}

impl KeyEntry {
    fn new(config: &ApiKeyConfig) -> Self {
        KeyEntry {
            id: config.id.clone(),
            rate_per_second: config.rate_per_second,
            burst: config.burst,
            bucket: Mutex::new(TokenBucket::new(config.rate_per_second, config.burst)),
            revoked: AtomicBool::new(false),
        }
    }

    /// Takes up to `wanted` tokens; returns how many were granted.
    fn take_up_to(&self, wanted: usize) -> usize {
        let now = Instant::now();
        let Ok(mut bucket) = self.bucket.lock() else {
            return 0;
        };
        (0..wanted).take_while(|_| bucket.try_take(now)).count()
    }
}

/// The token bucket of the key a request authenticated with, stored in the request's
/// extensions: a stream charges each of its messages to it.
#[derive(Debug, Clone)]
pub struct Quota(Arc<KeyEntry>);

impl Quota {
    /// Charges `messages` messages: `Ok(n)` lets the first `n` through (the rest are over the
    /// rate limit); a key revoked since the stream opened gets UNAUTHENTICATED.
    pub fn charge(&self, messages: usize) -> Result<usize, RequestError> {
        if self.0.revoked.load(Ordering::Relaxed) {
            return Err(RequestError::Unauthenticated);
        }
        Ok(self.0.take_up_to(messages))
    }

    /// The key's limit, for a limit shared across replicas
    /// ([`crate::state_backend::StateBackend::take_token`]).
    pub fn limit(&self) -> crate::state_backend::RateLimit<'_> {
        crate::state_backend::RateLimit {
            key_id: &self.0.id,
            rate_per_second: self.0.rate_per_second,
            burst: self.0.burst,
        }
    }

    /// The error of a message over the limit.
    pub fn exceeded(&self) -> RequestError {
        RequestError::RateLimited {
            key_id: self.0.id.clone(),
        }
    }
}

type KeyTable = HashMap<[u8; 32], Arc<KeyEntry>>;

/// What a reload of the API keys changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyReload {
    pub added: usize,
    pub removed: usize,
    pub kept: usize,
}

/// The interceptor. A server started with no keys accepts every request (the config only allows
/// that on loopback plaintext or with `allow_anonymous`). The key table can be replaced while
/// the server runs ([`ApiKeyCheck::replace_keys`]); clones share it.
#[derive(Debug, Clone)]
pub struct ApiKeyCheck {
    keys: Arc<RwLock<Arc<KeyTable>>>,
    /// The server started without keys. A server started with keys never turns anonymous:
    /// removing its last key refuses everyone.
    anonymous_when_empty: bool,
    metrics: Arc<Metrics>,
}

fn key_table(configs: &[ApiKeyConfig], previous: &KeyTable) -> KeyTable {
    configs
        .iter()
        .filter_map(|config| {
            let digest: [u8; 32] = hex::decode(&config.key_sha256).ok()?.try_into().ok()?;
            // A kept key keeps its bucket, so a reload does not refill a drained key.
            let entry = match previous.get(&digest) {
                Some(old)
                    if old.id == config.id
                        && old.rate_per_second == config.rate_per_second
                        && old.burst == config.burst =>
                {
                    Arc::clone(old)
                }
                _ => Arc::new(KeyEntry::new(config)),
            };
            Some((digest, entry))
        })
        .collect()
}

impl ApiKeyCheck {
    pub fn new(configs: &[ApiKeyConfig], metrics: Arc<Metrics>) -> Self {
        ApiKeyCheck {
            keys: Arc::new(RwLock::new(Arc::new(key_table(configs, &HashMap::new())))),
            anonymous_when_empty: configs.is_empty(),
            metrics,
        }
    }

    /// Replaces the key table: a removed key is refused from the next request on (and its open
    /// streams stop), a kept key keeps its token bucket.
    pub fn replace_keys(&self, configs: &[ApiKeyConfig]) -> KeyReload {
        let mut guard = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let next = key_table(configs, &guard);
        let mut reload = KeyReload::default();
        for (digest, entry) in guard.iter() {
            match next.get(digest) {
                Some(kept) if Arc::ptr_eq(kept, entry) => reload.kept += 1,
                _ => {
                    entry.revoked.store(true, Ordering::Relaxed);
                    reload.removed += 1;
                }
            }
        }
        reload.added = next.len() - reload.kept;
        *guard = Arc::new(next);
        reload
    }

    fn table(&self) -> Arc<KeyTable> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn check(&self, request: &Request<()>) -> Result<Option<Quota>, RequestError> {
        let keys = self.table();
        if keys.is_empty() && self.anonymous_when_empty {
            return Ok(None);
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(RequestError::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        let entry = keys.get(&digest).ok_or(RequestError::Unauthenticated)?;
        // Every call takes a token (a stream's further messages take theirs as they come).
        if entry.take_up_to(1) == 0 {
            return Err(RequestError::RateLimited {
                key_id: entry.id.clone(),
            });
        }
        Ok(Some(Quota(Arc::clone(entry))))
    }
}

impl Interceptor for ApiKeyCheck {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.check(&request) {
            Ok(quota) => {
                if let Some(quota) = quota {
                    request.extensions_mut().insert(KeyId(quota.0.id.clone()));
                    request.extensions_mut().insert(quota);
                }
                Ok(request)
            }
            Err(error) => {
                let reason = match error {
                    RequestError::RateLimited { .. } => "rate_limited",
                    _ => "unauthenticated",
                };
                self.metrics.record_rejection(reason);
                tracing::info!(reason, "request refused by the API key check");
                Err(error.into())
            }
        }
    }
}

/// Lower-case hex SHA-256 of an API key, as `key_sha256` wants it.
pub fn key_sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut bucket = TokenBucket::new(10.0, 2);
        let start = Instant::now();
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(110)));
    }

    #[test]
    fn only_a_configured_key_passes() {
        let config = ApiKeyConfig::from_key("fleet", "s3cret", 1.0, 1);
        let mut check = ApiKeyCheck::new(&[config], Arc::new(Metrics::new()));
        let with = |value: &str| {
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
            request
        };
        let err = check.call(with("Bearer wrong")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let ok = check.call(with("Bearer s3cret")).unwrap();
        assert_eq!(ok.extensions().get::<KeyId>(), Some(&KeyId("fleet".into())));
        let limited = check.call(with("Bearer s3cret")).unwrap_err();
        assert_eq!(limited.code(), tonic::Code::ResourceExhausted);
    }

    fn bearer(key: &str) -> Request<()> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        request
    }

    #[test]
    fn a_reload_revokes_removed_keys_keeps_the_buckets_of_kept_ones_and_never_opens_up() {
        let kept = ApiKeyConfig::from_key("kept", "k1", 0.001, 2);
        let removed = ApiKeyConfig::from_key("removed", "k2", 100.0, 10);
        let mut check = ApiKeyCheck::new(&[kept.clone(), removed], Arc::new(Metrics::new()));
        check.call(bearer("k1")).unwrap();
        let open_stream = check.call(bearer("k2")).unwrap();
        let quota = open_stream.extensions().get::<Quota>().unwrap().clone();

        let reload = check.replace_keys(std::slice::from_ref(&kept));
        assert_eq!(
            reload,
            KeyReload {
                added: 0,
                removed: 1,
                kept: 1
            }
        );
        let refused = check.call(bearer("k2")).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(quota.charge(1), Err(RequestError::Unauthenticated));
        // The kept key's bucket was not refilled by the reload: one token left, then none.
        check.call(bearer("k1")).unwrap();
        let drained = check.call(bearer("k1")).unwrap_err();
        assert_eq!(drained.code(), tonic::Code::ResourceExhausted);

        check.replace_keys(&[]);
        let locked = check.call(Request::new(())).unwrap_err();
        assert_eq!(locked.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_stream_quota_grants_what_the_bucket_holds() {
        let config = ApiKeyConfig::from_key("fleet", "s3cret", 0.001, 5);
        let mut check = ApiKeyCheck::new(&[config], Arc::new(Metrics::new()));
        let request = check.call(bearer("s3cret")).unwrap();
        let quota = request.extensions().get::<Quota>().unwrap();
        assert_eq!(
            quota.charge(10),
            Ok(4),
            "the call took one of the five tokens"
        );
        assert_eq!(quota.charge(3), Ok(0));
        assert_eq!(quota.exceeded().code(), tonic::Code::ResourceExhausted);
    }
}
