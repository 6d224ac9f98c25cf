//! The console's admin credential, sessions and CSRF tokens.
//!
//! * The admin password is configured only as a salted PBKDF2-HMAC-SHA256 hash
//!   (`pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`, made by `smsguard-cloud console-password`):
//!   slower to brute-force than the API keys' plain SHA-256, which suits a human-chosen
//!   password (API keys are long random strings, so plain SHA-256 is enough for them).
//! * A login yields a random 256-bit session token in an `HttpOnly; SameSite=Strict` cookie
//!   with an absolute expiry; the server keeps only the SHA-256 of each token.
//! * Each session has its own random CSRF token, required in every POST form of that session;
//!   the login form itself carries a pre-session token matched against a short-lived cookie.
//! * Failed logins are throttled: past [`MAX_FAILURES_PER_WINDOW`] in a window, logins are
//!   refused without checking the password until the window ends.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The cookie that carries the session token.
pub const SESSION_COOKIE: &str = "smsguard_console";
/// The cookie that carries the login form's pre-session CSRF token.
pub const LOGIN_COOKIE: &str = "smsguard_console_login";
/// Iterations `console-password` uses (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Failed logins accepted per minute before logins are refused outright.
pub const MAX_FAILURES_PER_WINDOW: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sessions held at once; the oldest is dropped past it.
const MAX_SESSIONS: usize = 64;
const HASH_PREFIX: &str = "pbkdf2-sha256";
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// A configured password hash that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("console password hash: {0} (expected pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX, made by `smsguard-cloud console-password`)")]
pub struct PasswordHashError(&'static str);

/// A parsed `pbkdf2-sha256$...` password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl PasswordHash {
    pub fn parse(text: &str) -> Result<Self, PasswordHashError> {
        let mut parts = text.trim().split('$');
        if parts.next() != Some(HASH_PREFIX) {
            return Err(PasswordHashError("unknown scheme"));
        }
        let iterations = parts
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(NonZeroU32::new)
            .ok_or(PasswordHashError("bad iteration count"))?;
        let salt = parts
            .next()
            .and_then(|s| hex::decode(s).ok())
            .filter(|s| s.len() >= 8)
            .ok_or(PasswordHashError("bad salt"))?;
        let hash = parts
            .next()
            .and_then(|h| hex::decode(h).ok())
            .filter(|h| h.len() == HASH_BYTES)
            .ok_or(PasswordHashError("bad hash"))?;
        if parts.next().is_some() {
            return Err(PasswordHashError("trailing fields"));
        }
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Hashes `password` with a fresh random salt.
    pub fn create(password: &str, iterations: u32) -> Result<String, PasswordHashError> {
        let iterations =
            NonZeroU32::new(iterations).ok_or(PasswordHashError("bad iteration count"))?;
        let mut salt = [0u8; SALT_BYTES];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| PasswordHashError("no system randomness"))?;
        let mut hash = [0u8; HASH_BYTES];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        Ok(format!(
            "{HASH_PREFIX}${iterations}${}${}",
            hex::encode(salt),
            hex::encode(hash)
        ))
    }

    /// Whether `password` matches, in constant time (ring's verify).
    pub fn verify(&self, password: &str) -> bool {
        ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }
}

/// A random 256-bit token, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // SystemRandom fails only when the OS has no randomness at all; a zero token would then be
    // guessable, so refuse to go on.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// Equality whose time does not depend on where the inputs differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A logged-in admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// The token every POST form of this session must carry.
    pub csrf: String,
    expires: Instant,
}

/// The live sessions, keyed by the SHA-256 of their token, and the failed-login throttle.
#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    by_token_hash: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<(Instant, u32)>,
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Self {
        Sessions {
            lifetime,
            by_token_hash: Mutex::new(HashMap::new()),
            failures: Mutex::new((Instant::now(), 0)),
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Opens a session for `user`; returns its cookie token and the session.
    pub fn open(&self, user: &str) -> (String, Session) {
        let token = random_token();
        let session = Session {
            user: user.to_owned(),
            csrf: random_token(),
            expires: Instant::now() + self.lifetime,
        };
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(token_key(&token), session.clone());
        (token, session)
    }

    /// The unexpired session of `token`.
    pub fn find(&self, token: &str) -> Option<Session> {
        let mut sessions = self.lock();
        let key = token_key(token);
        match sessions.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, token: &str) {
        self.lock().remove(&token_key(token));
    }

    /// Whether logins are refused now because too many failed in the current window.
    pub fn throttled(&self) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.0.elapsed() < FAILURE_WINDOW && failures.1 >= MAX_FAILURES_PER_WINDOW
    }

    /// Counts one failed login; true when this failure starts the throttle.
    pub fn record_failure(&self) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.0.elapsed() >= FAILURE_WINDOW {
            *failures = (Instant::now(), 0);
        }
        failures.1 += 1;
        failures.1 == MAX_FAILURES_PER_WINDOW
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the map cannot leave it inconsistent (single inserts/removes).
        self.by_token_hash.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly (no script reads it), SameSite=Strict (no other site's page
/// sends it), path-wide, expiring after `max_age`.
pub fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_round_trip_and_rejects_wrong_password() {
        let text = PasswordHash::create("correct horse", 1000).unwrap();
        let hash = PasswordHash::parse(&text).unwrap();
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horsf"));
        assert!(!hash.verify(""));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "sha256$1$00$00",
            "pbkdf2-sha256$0$0011223344556677$".to_owned().as_str(),
            "pbkdf2-sha256$10$zz$00",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sessions_expire_and_close() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let (token, session) = sessions.open("admin");
        assert_eq!(sessions.find(&token), Some(session));
        assert_eq!(sessions.find("not-a-token"), None);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(sessions.find(&token), None);
        let (token, _) = sessions.open("admin");
        sessions.close(&token);
        assert_eq!(sessions.find(&token), None);
    }

    #[test]
    fn logins_are_throttled_after_repeated_failures() {
        let sessions = Sessions::new(Duration::from_secs(60));
        for n in 1..=MAX_FAILURES_PER_WINDOW {
            assert!(!sessions.throttled());
            assert_eq!(sessions.record_failure(), n == MAX_FAILURES_PER_WINDOW);
        }
        assert!(sessions.throttled());
        assert!(!sessions.record_failure(), "the throttle starts once");
    }

    #[test]
    fn cookie_lookup_finds_the_named_cookie_only() {
        let header = "a=1; smsguard_console=abc; smsguard_console_login=def";
        assert_eq!(cookie(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(header, LOGIN_COOKIE), Some("def"));
        assert_eq!(cookie(header, "b"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
    }
}
