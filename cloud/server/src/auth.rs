//! API keys and per-key rate limits, checked in a tonic interceptor before any handler runs.
//!
//! Only the SHA-256 of each key is configured and kept; a presented key is hashed and looked up.
//! Each key has a token bucket (`rate_per_second`, `burst`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

#[derive(Debug)]
struct TokenBucket {
    rate_per_second: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    fn new(rate_per_second: f64, burst: u32) -> Self {
        let capacity = f64::from(burst.max(1));
        TokenBucket {
            rate_per_second,
            capacity,
            tokens: capacity,
            refilled_at: Instant::now(),
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
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
    bucket: Mutex<TokenBucket>,
}

/// The interceptor. With no keys configured every request is accepted (the config only allows
/// that on loopback plaintext or with `allow_anonymous`).
#[derive(Debug, Clone)]
pub struct ApiKeyCheck {
    keys: Arc<HashMap<[u8; 32], KeyEntry>>,
    metrics: Arc<Metrics>,
}

impl ApiKeyCheck {
    pub fn new(configs: &[ApiKeyConfig], metrics: Arc<Metrics>) -> Self {
        let keys = configs
            .iter()
            .filter_map(|config| {
                let digest: [u8; 32] = hex::decode(&config.key_sha256).ok()?.try_into().ok()?;
                let entry = KeyEntry {
                    id: config.id.clone(),
                    bucket: Mutex::new(TokenBucket::new(config.rate_per_second, config.burst)),
                };
                Some((digest, entry))
            })
            .collect();
        ApiKeyCheck {
            keys: Arc::new(keys),
            metrics,
        }
    }

    fn check(&self, request: &Request<()>) -> Result<Option<KeyId>, RequestError> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(RequestError::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        let entry = self
            .keys
            .get(&digest)
            .ok_or(RequestError::Unauthenticated)?;
        let allowed = entry
            .bucket
            .lock()
            .map(|mut bucket| bucket.try_take(Instant::now()))
            .unwrap_or(false);
        if !allowed {
            return Err(RequestError::RateLimited {
                key_id: entry.id.clone(),
            });
        }
        Ok(Some(KeyId(entry.id.clone())))
    }
}

impl Interceptor for ApiKeyCheck {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.check(&request) {
            Ok(key) => {
                if let Some(key) = key {
                    request.extensions_mut().insert(key);
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
}
