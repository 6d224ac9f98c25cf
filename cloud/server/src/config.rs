//! [`ServerConfig`]: the service's settings, from a TOML file, then `SMSGUARD_*` environment
//! variables, then command-line flags, validated once at start with errors that name the setting.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of loading or validating the configuration. They name the setting, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid setting `{setting}`: {message}")]
    Invalid { setting: String, message: String },
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

/// TLS material (PEM files). With `client_ca_pem` set, clients must present a certificate
/// signed by that CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    #[serde(default)]
    pub client_ca_pem: Option<PathBuf>,
}

/// One API key: only the SHA-256 of the key is configured, never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Name of the key in logs and metrics (e.g. a device fleet).
    pub id: String,
    /// Lower-case hex of the SHA-256 of the key's UTF-8 bytes.
    pub key_sha256: String,
    /// Sustained requests per second allowed for this key.
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Requests allowed in a burst above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl ApiKeyConfig {
    /// The entry for `key`: only its SHA-256 is kept.
    pub fn from_key(id: &str, key: &str, rate_per_second: f64, burst: u32) -> Self {
        ApiKeyConfig {
            id: id.to_owned(),
            key_sha256: crate::auth::key_sha256_hex(key),
            rate_per_second,
            burst,
        }
    }
}

/// The longest text of a concatenated SMS in UTF-8 bytes: at most 255 segments (the 8-bit
/// concatenation reference, 3GPP TS 23.040) of 67 UCS-2 characters (the 16-bit alphabet's
/// 70 minus the header), and a UCS-2 character takes at most 3 UTF-8 bytes (CJK and every other
/// BMP character from U+0800; a surrogate pair takes 4 bytes for 2 characters). 17,085
/// characters, 51,255 bytes. The 7-bit alphabet reaches 255 x 153 = 39,015 one-byte
/// characters, less.
pub const LONGEST_SMS_BYTES: usize = 255 * 67 * 3;

fn default_rate() -> f64 {
    100.0
}

fn default_burst() -> u32 {
    200
}

/// Every setting of the service; `Default` is a local development server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Serve without TLS (refused on a non-loopback address unless `force_plaintext`).
    pub plaintext: bool,
    pub force_plaintext: bool,
    /// The sled stores (similarity memory, sync log) and, by default, the signing key.
    pub data_dir: PathBuf,
    pub tls: Option<TlsConfig>,
    pub api_keys: Vec<ApiKeyConfig>,
    /// Accept requests without an API key although the server is not loopback plaintext
    /// (e.g. when client certificates authenticate devices).
    pub allow_anonymous: bool,
    /// Prometheus text metrics at `http://<metrics_listen>/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Largest `SmsMessage.body`, in UTF-8 bytes. The default, [`LONGEST_SMS_BYTES`], is the
    /// longest text a concatenated SMS can carry, so no real message is refused.
    pub max_body_bytes: usize,
    /// Most messages in one `ClassifyStream` frame.
    pub max_batch_messages: usize,
    /// Largest encoded gRPC request message, in bytes (transport limit; larger ones get
    /// RESOURCE_EXHAUSTED). The default, 4 MiB, holds a `ClassifyStream` frame of 64 messages
    /// of the longest SMS (64 x 51,255 bytes = 3.3 MB, plus their other fields).
    pub max_request_bytes: usize,
    /// Requests scored at once; more get RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Answer frames a `ClassifyStream` may buffer before it stops reading (back-pressure).
    pub stream_buffer_frames: usize,
    /// Connections the gRPC listener holds at once; more are closed as soon as they are
    /// accepted. Lowered at start to fit the process's open-files limit.
    pub max_connections: usize,
    /// Connections the metrics listener holds at once.
    pub metrics_max_connections: usize,
    /// A new connection must send its HTTP/2 preface (or complete its TLS handshake) within
    /// this many milliseconds; a metrics request must arrive within it.
    pub handshake_timeout_ms: u64,
    /// A connection nothing has been read from for this many milliseconds is closed. The
    /// server pings every connection at a third of it (HTTP/2 keepalive), so a live client,
    /// which answers the pings, never goes idle.
    pub idle_timeout_ms: u64,
    /// Upper bound of any request's deadline, in milliseconds (a shorter `grpc-timeout` wins).
    pub request_timeout_ms: u64,
    /// Seconds a graceful shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace_seconds: u64,
    /// Seed an empty similarity memory from the corpora's training spam.
    pub seed_from_corpora: bool,
    /// Where the corpora are (default: the repository's datasets folder, when found).
    pub datasets_dir: Option<PathBuf>,
    /// A rules file to load and hot-reload instead of the built-in rules.
    pub rules_path: Option<PathBuf>,
    /// A labelled TSV (`label<TAB>text`) of fresh spam, re-imported into the similarity memory
    /// whenever it changes (hot reload of the memory).
    pub spam_feed_path: Option<PathBuf>,
    /// Seconds between checks of the rules file and the spam feed (SIGHUP checks at once).
    pub reload_interval_seconds: u64,
    /// Hex Ed25519 secret written by `smsguard-cloud keygen` (default: `data_dir/signing.key`,
    /// created on first start).
    pub signing_key_path: Option<PathBuf>,
    /// A folder holding edge-int8.onnx, vocab.json and manifest.json (default: the committed
    /// edge model, compiled in).
    pub edge_model_dir: Option<PathBuf>,
    /// Cache TTL sent with verdicts; 0 keeps the fusion model's per-action TTL.
    pub cache_ttl_seconds: u32,
    /// The operator console's address (HTTP; off when unset). See `crate::console`.
    pub console_listen: Option<SocketAddr>,
    /// Allow `console_listen` on a non-loopback address (put TLS in front of it: the console
    /// speaks plain HTTP).
    pub console_allow_remote: bool,
    /// The console's admin user name.
    pub console_admin_user: String,
    /// The admin password as `pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`, made by
    /// `smsguard-cloud console-password` (never the password itself). Required with
    /// `console_listen`.
    pub console_admin_password_hash: Option<String>,
    /// Minutes a console login lasts (absolute, not sliding).
    pub console_session_minutes: u64,
    /// The file this config was loaded from: a reload (SIGHUP) re-reads its API keys.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    /// Distinct API keys that must agree on a fingerprint before user reports change anyone
    /// else's verdict or reach the phones (anonymous clients are one reporter together).
    pub report_quorum: u32,
    /// Reports one API key may file per minute (a token bucket of this size refilled over a
    /// minute); the excess is refused with RESOURCE_EXHAUSTED. 0 turns the budget off.
    pub report_budget_per_minute: u32,
    /// Page cache of the similarity memory's sled store, in bytes (its in-memory LSH index
    /// grows with the distinct fingerprints stored, which reports add to at most
    /// `report_budget_per_minute` per key).
    pub similarity_cache_bytes: usize,
    /// Page cache of the sync log's sled store (sync log, console audit), in bytes. sled's own
    /// default is 1 GiB, which a long-running server fills from its log; this bounds it.
    pub sync_cache_bytes: usize,
    /// Most senders the sender reputation tracks at once (the least recently seen is
    /// forgotten first); about 1 KiB each.
    pub max_senders: usize,
    /// Fingerprints of recently classified messages kept (two generations of this many) so
    /// that a report carrying only a fingerprint id can be resolved; about 0.4 KiB each.
    pub recent_fingerprints: usize,
    /// k of the private similarity lookup: a (band, prefix) bucket storing fewer entries is
    /// answered empty, so no answer narrows a query to fewer than k stored messages.
    pub private_min_bucket_entries: usize,
    /// Where the state replicas share lives: `None` keeps it in this process (sled files in
    /// `data_dir`, windows in memory); `redis://HOST:PORT/DB` shares it through one Redis.
    pub state: Option<String>,
    /// How long a message waits for the shared state before it is scored without it
    /// (degraded), in milliseconds; also bounds every other call to the shared state.
    pub state_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            plaintext: false,
            force_plaintext: false,
            data_dir: PathBuf::from("smsguard-cloud-data"),
            tls: None,
            api_keys: Vec::new(),
            allow_anonymous: false,
            metrics_listen: None,
            max_body_bytes: LONGEST_SMS_BYTES,
            max_batch_messages: 64,
            max_request_bytes: 4 * 1024 * 1024,
            max_in_flight: 256,
            stream_buffer_frames: 4,
            max_connections: 1024,
            metrics_max_connections: 16,
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 90_000,
            request_timeout_ms: 10_000,
            shutdown_grace_seconds: 10,
            seed_from_corpora: true,
            datasets_dir: None,
            rules_path: None,
            spam_feed_path: None,
            reload_interval_seconds: 10,
            signing_key_path: None,
            edge_model_dir: None,
            cache_ttl_seconds: 0,
            console_listen: None,
            console_allow_remote: false,
            console_admin_user: "admin".into(),
            console_admin_password_hash: None,
            console_session_minutes: 60,
            source_file: None,
            report_quorum: 3,
            report_budget_per_minute: 60,
            similarity_cache_bytes: 32 * 1024 * 1024,
            sync_cache_bytes: 16 * 1024 * 1024,
            max_senders: 100_000,
            recent_fingerprints: 50_000,
            private_min_bucket_entries: 8,
            state: None,
            state_timeout_ms: 50,
        }
    }
}

impl ServerConfig {
    /// A loopback plaintext server on an ephemeral port with no keys, no seeding, no metrics.
    pub fn for_tests(data_dir: &Path) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            plaintext: true,
            data_dir: data_dir.to_path_buf(),
            seed_from_corpora: false,
            ..ServerConfig::default()
        }
    }

    /// Defaults, then the TOML file at `path` (if any), then `SMSGUARD_*` variables, then
    /// `overrides` (the command-line flags); validated once all are applied.
    pub fn load(
        path: Option<&Path>,
        overrides: impl FnOnce(&mut Self),
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => ServerConfig::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        overrides(&mut config);
        config.validate()?;
        config.source_file = path.map(Path::to_path_buf);
        Ok(config)
    }

    /// The API keys as they are now: re-read from [`ServerConfig::source_file`], with
    /// `SMSGUARD_API_KEYS` still taking precedence as at start; validated. `None` when the config
    /// did not come from a file (the keys cannot have changed).
    pub fn current_api_keys(&self) -> Result<Option<Vec<ApiKeyConfig>>, ConfigError> {
        let Some(path) = &self.source_file else {
            return Ok(None);
        };
        let mut fresh = Self::from_file(path)?;
        if let Ok(keys) = std::env::var("SMSGUARD_API_KEYS") {
            fresh.api_keys = parse_api_keys_env(&keys)?;
        }
        // No emptiness check: removing every key of a running server revokes them all (a server
        // started with keys never turns anonymous; see `auth::ApiKeyCheck`).
        fresh.validate_key_entries()?;
        Ok(Some(fresh.api_keys))
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Overrides settings from environment variables (looked up with `lookup`, so tests need not
    /// touch the process environment). See [`ENV_VARS`].
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let env = EnvReader { lookup: &lookup };
        env.set("SMSGUARD_LISTEN", &mut self.listen)?;
        env.set("SMSGUARD_PLAINTEXT", &mut self.plaintext)?;
        env.set("SMSGUARD_FORCE_PLAINTEXT", &mut self.force_plaintext)?;
        env.set("SMSGUARD_DATA_DIR", &mut self.data_dir)?;
        env.set("SMSGUARD_ALLOW_ANONYMOUS", &mut self.allow_anonymous)?;
        env.set_some("SMSGUARD_METRICS_LISTEN", &mut self.metrics_listen)?;
        env.set("SMSGUARD_MAX_BODY_BYTES", &mut self.max_body_bytes)?;
        env.set("SMSGUARD_MAX_BATCH_MESSAGES", &mut self.max_batch_messages)?;
        env.set("SMSGUARD_MAX_REQUEST_BYTES", &mut self.max_request_bytes)?;
        env.set("SMSGUARD_MAX_IN_FLIGHT", &mut self.max_in_flight)?;
        env.set("SMSGUARD_MAX_CONNECTIONS", &mut self.max_connections)?;
        env.set(
            "SMSGUARD_METRICS_MAX_CONNECTIONS",
            &mut self.metrics_max_connections,
        )?;
        env.set(
            "SMSGUARD_HANDSHAKE_TIMEOUT_MS",
            &mut self.handshake_timeout_ms,
        )?;
        env.set("SMSGUARD_IDLE_TIMEOUT_MS", &mut self.idle_timeout_ms)?;
        env.set("SMSGUARD_REQUEST_TIMEOUT_MS", &mut self.request_timeout_ms)?;
        env.set("SMSGUARD_SEED_FROM_CORPORA", &mut self.seed_from_corpora)?;
        env.set_some("SMSGUARD_DATASETS_DIR", &mut self.datasets_dir)?;
        env.set_some("SMSGUARD_RULES_PATH", &mut self.rules_path)?;
        env.set_some("SMSGUARD_SPAM_FEED_PATH", &mut self.spam_feed_path)?;
        env.set_some("SMSGUARD_SIGNING_KEY_PATH", &mut self.signing_key_path)?;
        env.set_some("SMSGUARD_EDGE_MODEL_DIR", &mut self.edge_model_dir)?;
        env.set("SMSGUARD_CACHE_TTL_SECONDS", &mut self.cache_ttl_seconds)?;
        env.set("SMSGUARD_REPORT_QUORUM", &mut self.report_quorum)?;
        env.set(
            "SMSGUARD_REPORT_BUDGET_PER_MINUTE",
            &mut self.report_budget_per_minute,
        )?;
        env.set(
            "SMSGUARD_SIMILARITY_CACHE_BYTES",
            &mut self.similarity_cache_bytes,
        )?;
        env.set("SMSGUARD_SYNC_CACHE_BYTES", &mut self.sync_cache_bytes)?;
        env.set("SMSGUARD_MAX_SENDERS", &mut self.max_senders)?;
        env.set_some("SMSGUARD_STATE", &mut self.state)?;
        env.set("SMSGUARD_STATE_TIMEOUT_MS", &mut self.state_timeout_ms)?;
        env.set(
            "SMSGUARD_RECENT_FINGERPRINTS",
            &mut self.recent_fingerprints,
        )?;
        env.set(
            "SMSGUARD_PRIVATE_MIN_BUCKET_ENTRIES",
            &mut self.private_min_bucket_entries,
        )?;
        env.set_some("SMSGUARD_CONSOLE_LISTEN", &mut self.console_listen)?;
        env.set(
            "SMSGUARD_CONSOLE_ALLOW_REMOTE",
            &mut self.console_allow_remote,
        )?;
        env.set("SMSGUARD_CONSOLE_ADMIN_USER", &mut self.console_admin_user)?;
        env.set_some(
            "SMSGUARD_CONSOLE_ADMIN_PASSWORD_HASH",
            &mut self.console_admin_password_hash,
        )?;
        let mut cert: Option<PathBuf> = None;
        let mut key: Option<PathBuf> = None;
        let mut client_ca: Option<PathBuf> = None;
        env.set_some("SMSGUARD_TLS_CERT_PEM", &mut cert)?;
        env.set_some("SMSGUARD_TLS_KEY_PEM", &mut key)?;
        env.set_some("SMSGUARD_TLS_CLIENT_CA_PEM", &mut client_ca)?;
        match (cert, key) {
            (Some(cert_pem), Some(key_pem)) => {
                self.tls = Some(TlsConfig {
                    cert_pem,
                    key_pem,
                    client_ca_pem: client_ca,
                })
            }
            (None, None) => {
                if let (Some(tls), Some(ca)) = (self.tls.as_mut(), client_ca) {
                    tls.client_ca_pem = Some(ca);
                }
            }
            _ => {
                return Err(ConfigError::Env {
                    name: "SMSGUARD_TLS_CERT_PEM".into(),
                    message: "set SMSGUARD_TLS_CERT_PEM and SMSGUARD_TLS_KEY_PEM together".into(),
                })
            }
        }
        if let Some(keys) = lookup("SMSGUARD_API_KEYS") {
            self.api_keys = parse_api_keys_env(&keys)?;
        }
        Ok(())
    }

    /// Checks every setting; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_transport()?;
        self.validate_limits()?;
        self.validate_report_quorum()?;
        self.validate_api_keys()?;
        self.validate_state()?;
        self.validate_console()
    }

    /// A shared state is a Redis URL.
    fn validate_state(&self) -> Result<(), ConfigError> {
        match &self.state {
            Some(url) if !url.starts_with("redis://") => {
                Err(invalid("state", "expected redis://HOST:PORT/DB"))
            }
            _ => Ok(()),
        }
    }

    /// The console needs a password hash that parses, a loopback address unless remote access
    /// is allowed explicitly, and a port of its own.
    fn validate_console(&self) -> Result<(), ConfigError> {
        let Some(console) = self.console_listen else {
            return Ok(());
        };
        if !console.ip().is_loopback() && !self.console_allow_remote {
            return Err(invalid(
                "console_listen",
                format!(
                    "{console} is not a loopback address; set console_allow_remote = true \
                     (--console-allow-remote) and put TLS in front of it if you mean it"
                ),
            ));
        }
        let taken = [Some(self.listen), self.metrics_listen];
        if console.port() != 0 && taken.contains(&Some(console)) {
            return Err(invalid(
                "console_listen",
                "must differ from listen and metrics_listen",
            ));
        }
        if self.console_admin_user.trim().is_empty() {
            return Err(invalid("console_admin_user", "must not be empty"));
        }
        if self.console_session_minutes == 0 {
            return Err(invalid("console_session_minutes", "must be positive"));
        }
        let hash = self.console_admin_password_hash.as_deref().ok_or_else(|| {
            invalid(
                "console_admin_password_hash",
                "required with console_listen (make one with `smsguard-cloud console-password`)",
            )
        })?;
        crate::console::auth::PasswordHash::parse(hash)
            .map_err(|e| invalid("console_admin_password_hash", e.to_string()))?;
        Ok(())
    }

    fn validate_report_quorum(&self) -> Result<(), ConfigError> {
        if self.report_quorum == 0 {
            return Err(invalid(
                "report_quorum",
                "must be at least 1 (the number of API keys whose reports must agree)",
            ));
        }
        Ok(())
    }

    fn validate_transport(&self) -> Result<(), ConfigError> {
        let loopback = self.listen.ip().is_loopback();
        match (&self.tls, self.plaintext) {
            (Some(_), true) => {
                return Err(invalid(
                    "plaintext",
                    "plaintext and [tls] are both set; choose one",
                ))
            }
            (None, false) => return Err(invalid(
                "tls",
                "no TLS certificate configured: set [tls] cert_pem/key_pem, or plaintext = true \
                     (--plaintext) for local use",
            )),
            (None, true) if !loopback && !self.force_plaintext => {
                return Err(invalid(
                    "plaintext",
                    format!(
                        "plaintext on the non-loopback address {} is refused; use TLS, or \
                         force_plaintext = true (--force-plaintext) if you really mean it",
                        self.listen
                    ),
                ))
            }
            _ => {}
        }
        if let Some(tls) = &self.tls {
            let files = [
                ("tls.cert_pem", Some(&tls.cert_pem)),
                ("tls.key_pem", Some(&tls.key_pem)),
            ];
            let ca = [("tls.client_ca_pem", tls.client_ca_pem.as_ref())];
            for (setting, path) in files.iter().chain(&ca) {
                if let Some(path) = path.filter(|p| !p.is_file()) {
                    return Err(invalid(
                        setting,
                        format!("{} is not a file", path.display()),
                    ));
                }
            }
        }
        if let Some(path) = self.rules_path.as_ref().filter(|p| !p.is_file()) {
            return Err(invalid(
                "rules_path",
                format!("{} is not a file", path.display()),
            ));
        }
        if let Some(path) = self.signing_key_path.as_ref().filter(|p| !p.is_file()) {
            return Err(invalid(
                "signing_key_path",
                format!(
                    "{} is not a file (create one with `smsguard-cloud keygen --out DIR`)",
                    path.display()
                ),
            ));
        }
        if self
            .metrics_listen
            .is_some_and(|m| m == self.listen && m.port() != 0)
        {
            return Err(invalid("metrics_listen", "must differ from listen"));
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let ranges: [(&str, usize, usize, usize); 13] = [
            ("max_body_bytes", self.max_body_bytes, 1, 64 * 1024),
            ("max_batch_messages", self.max_batch_messages, 1, 4096),
            (
                "max_request_bytes",
                self.max_request_bytes,
                1024,
                64 * 1024 * 1024,
            ),
            ("max_in_flight", self.max_in_flight, 1, 1_000_000),
            ("stream_buffer_frames", self.stream_buffer_frames, 1, 1024),
            ("max_connections", self.max_connections, 1, 1_000_000),
            (
                "metrics_max_connections",
                self.metrics_max_connections,
                1,
                1024,
            ),
            (
                "similarity_cache_bytes",
                self.similarity_cache_bytes,
                1024 * 1024,
                64 * 1024 * 1024 * 1024,
            ),
            (
                "sync_cache_bytes",
                self.sync_cache_bytes,
                1024 * 1024,
                64 * 1024 * 1024 * 1024,
            ),
            ("max_senders", self.max_senders, 1, 100_000_000),
            (
                "state_timeout_ms",
                self.state_timeout_ms as usize,
                1,
                60_000,
            ),
            (
                "recent_fingerprints",
                self.recent_fingerprints,
                1,
                100_000_000,
            ),
            (
                "private_min_bucket_entries",
                self.private_min_bucket_entries,
                1,
                1_000_000,
            ),
        ];
        for (setting, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(invalid(
                    setting,
                    format!("{value} is outside {min}..={max}"),
                ));
            }
        }
        if self.max_request_bytes < self.max_body_bytes + 1024 {
            return Err(invalid(
                "max_request_bytes",
                "must hold one message of max_body_bytes (at least max_body_bytes + 1024)",
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(invalid("request_timeout_ms", "must be positive"));
        }
        if !(10..=600_000).contains(&self.handshake_timeout_ms) {
            return Err(invalid(
                "handshake_timeout_ms",
                "must be within 10..=600000",
            ));
        }
        if self.idle_timeout_ms < self.handshake_timeout_ms.max(30) {
            return Err(invalid(
                "idle_timeout_ms",
                "must be at least handshake_timeout_ms (and 30)",
            ));
        }
        if self.reload_interval_seconds == 0 {
            return Err(invalid("reload_interval_seconds", "must be positive"));
        }
        Ok(())
    }

    fn validate_api_keys(&self) -> Result<(), ConfigError> {
        self.validate_key_entries()?;
        let local_dev = self.plaintext && self.listen.ip().is_loopback();
        if self.api_keys.is_empty() && !local_dev && !self.allow_anonymous {
            return Err(invalid(
                "api_keys",
                "no API keys configured on a non-local server; add [[api_keys]] or set \
                 allow_anonymous = true",
            ));
        }
        Ok(())
    }

    fn validate_key_entries(&self) -> Result<(), ConfigError> {
        let mut ids = HashSet::new();
        let mut hashes = HashSet::new();
        for key in &self.api_keys {
            let setting = format!("api_keys[{}]", key.id);
            if key.id.is_empty() || !ids.insert(key.id.as_str()) {
                return Err(invalid(&setting, "ids must be non-empty and unique"));
            }
            let hash = key.key_sha256.to_ascii_lowercase();
            if hash.len() != 64 || hex::decode(&hash).is_err() {
                return Err(invalid(&setting, "key_sha256 must be 64 hex digits"));
            }
            if !hashes.insert(hash) {
                return Err(invalid(&setting, "the same key is configured twice"));
            }
            if !(key.rate_per_second.is_finite() && key.rate_per_second > 0.0) {
                return Err(invalid(&setting, "rate_per_second must be positive"));
            }
            if key.burst == 0 {
                return Err(invalid(&setting, "burst must be at least 1"));
            }
        }
        Ok(())
    }

    /// True when requests without an API key are accepted.
    pub fn accepts_anonymous(&self) -> bool {
        self.api_keys.is_empty()
    }
}

/// The environment variables [`ServerConfig::apply_env`] reads.
pub const ENV_VARS: &[&str] = &[
    "SMSGUARD_LISTEN",
    "SMSGUARD_PLAINTEXT",
    "SMSGUARD_FORCE_PLAINTEXT",
    "SMSGUARD_DATA_DIR",
    "SMSGUARD_ALLOW_ANONYMOUS",
    "SMSGUARD_METRICS_LISTEN",
    "SMSGUARD_MAX_BODY_BYTES",
    "SMSGUARD_MAX_BATCH_MESSAGES",
    "SMSGUARD_MAX_REQUEST_BYTES",
    "SMSGUARD_MAX_IN_FLIGHT",
    "SMSGUARD_MAX_CONNECTIONS",
    "SMSGUARD_METRICS_MAX_CONNECTIONS",
    "SMSGUARD_HANDSHAKE_TIMEOUT_MS",
    "SMSGUARD_IDLE_TIMEOUT_MS",
    "SMSGUARD_REQUEST_TIMEOUT_MS",
    "SMSGUARD_SEED_FROM_CORPORA",
    "SMSGUARD_DATASETS_DIR",
    "SMSGUARD_RULES_PATH",
    "SMSGUARD_SPAM_FEED_PATH",
    "SMSGUARD_SIGNING_KEY_PATH",
    "SMSGUARD_EDGE_MODEL_DIR",
    "SMSGUARD_CACHE_TTL_SECONDS",
    "SMSGUARD_REPORT_QUORUM",
    "SMSGUARD_REPORT_BUDGET_PER_MINUTE",
    "SMSGUARD_SIMILARITY_CACHE_BYTES",
    "SMSGUARD_SYNC_CACHE_BYTES",
    "SMSGUARD_MAX_SENDERS",
    "SMSGUARD_RECENT_FINGERPRINTS",
    "SMSGUARD_STATE",
    "SMSGUARD_STATE_TIMEOUT_MS",
    "SMSGUARD_TLS_CERT_PEM",
    "SMSGUARD_TLS_KEY_PEM",
    "SMSGUARD_TLS_CLIENT_CA_PEM",
    "SMSGUARD_API_KEYS",
    "SMSGUARD_CONSOLE_LISTEN",
    "SMSGUARD_CONSOLE_ALLOW_REMOTE",
    "SMSGUARD_CONSOLE_ADMIN_USER",
    "SMSGUARD_CONSOLE_ADMIN_PASSWORD_HASH",
];

struct EnvReader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> EnvReader<'_, F> {
    fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let Some(text) = (self.lookup)(name).filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        text.trim()
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ConfigError::Env {
                name: name.to_owned(),
                message: format!("cannot parse {:?}: {e}", text.trim()),
            })
    }

    fn set<T: std::str::FromStr>(&self, name: &str, slot: &mut T) -> Result<(), ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        if let Some(value) = self.parse(name)? {
            *slot = value;
        }
        Ok(())
    }

    fn set_some<T: std::str::FromStr>(
        &self,
        name: &str,
        slot: &mut Option<T>,
    ) -> Result<(), ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        if let Some(value) = self.parse(name)? {
            *slot = Some(value);
        }
        Ok(())
    }
}

/// `SMSGUARD_API_KEYS`: comma-separated `id:sha256hex[:rate_per_second[:burst]]`.
fn parse_api_keys_env(text: &str) -> Result<Vec<ApiKeyConfig>, ConfigError> {
    let env_error = |message: String| ConfigError::Env {
        name: "SMSGUARD_API_KEYS".into(),
        message,
    };
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .enumerate()
        .map(|(i, item)| {
            let parts: Vec<&str> = item.split(':').collect();
            if !(2..=4).contains(&parts.len()) {
                return Err(env_error(format!(
                    "entry {i}: expected id:sha256hex[:rate_per_second[:burst]]"
                )));
            }
            let rate = match parts.get(2) {
                Some(r) => r
                    .parse()
                    .map_err(|_| env_error(format!("entry {i}: bad rate_per_second")))?,
                None => default_rate(),
            };
            let burst = match parts.get(3) {
                Some(b) => b
                    .parse()
                    .map_err(|_| env_error(format!("entry {i}: bad burst")))?,
                None => default_burst(),
            };
            Ok(ApiKeyConfig {
                id: parts[0].to_owned(),
                key_sha256: parts[1].to_ascii_lowercase(),
                rate_per_second: rate,
                burst,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_on_a_public_address_is_refused_unless_forced() {
        let mut config = ServerConfig::for_tests(Path::new("/tmp/x"));
        config.listen = "0.0.0.0:50051".parse().unwrap();
        config.allow_anonymous = true;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("force_plaintext"), "{err}");
        config.force_plaintext = true;
        config.validate().unwrap();
    }

    #[test]
    fn env_overrides_the_file_and_names_the_bad_variable() {
        let mut config =
            ServerConfig::from_toml("max_body_bytes = 100\nplaintext = true\n").unwrap();
        config
            .apply_env(|name| (name == "SMSGUARD_MAX_BODY_BYTES").then(|| "300".to_owned()))
            .unwrap();
        assert_eq!(config.max_body_bytes, 300);
        let err = config
            .apply_env(|name| (name == "SMSGUARD_LISTEN").then(|| "nowhere".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SMSGUARD_LISTEN"), "{err}");
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let config = ServerConfig::from_toml(include_str!("../cloud.example.toml")).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
    }

    #[test]
    fn the_console_needs_a_hash_and_loopback_unless_allowed() {
        let mut config = ServerConfig::for_tests(Path::new("/tmp/x"));
        config.console_listen = Some("127.0.0.1:0".parse().unwrap());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("console_admin_password_hash"), "{err}");
        config.console_admin_password_hash = Some("sha256:abc".into());
        assert!(config.validate().is_err());
        config.console_admin_password_hash =
            Some(crate::console::auth::PasswordHash::create("pw", 10).unwrap());
        config.validate().unwrap();
        config.console_listen = Some("0.0.0.0:8080".parse().unwrap());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("console_allow_remote"), "{err}");
        config.console_allow_remote = true;
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_api_keys_are_rejected() {
        assert!(ServerConfig::from_toml("listne = \"127.0.0.1:1\"").is_err());
        let mut config = ServerConfig::for_tests(Path::new("/tmp/x"));
        config.api_keys = parse_api_keys_env("fleet:abc").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("64 hex"), "{err}");
    }

    #[test]
    fn memory_bounds_are_configurable_and_zero_is_refused() {
        let mut config = ServerConfig::from_toml(
            "plaintext = true\nmax_senders = 5000\nsync_cache_bytes = 2097152\n",
        )
        .unwrap();
        config
            .apply_env(|name| (name == "SMSGUARD_RECENT_FINGERPRINTS").then(|| "900".to_owned()))
            .unwrap();
        assert_eq!(
            (config.max_senders, config.sync_cache_bytes),
            (5000, 2 << 20)
        );
        assert_eq!(config.recent_fingerprints, 900);
        config.validate().unwrap();
        config.max_senders = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("max_senders"), "{err}");
    }
}
