//! The bridge proper, shared by the JNI and C entry points: look up the handle, call the engine,
//! serialise the result as JSON. No decisions are made here; the engine owns all behaviour.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use smsguard_edge::engine::{DeviceKey, Engine, EngineConfig};

use crate::error::{BridgeError, BridgeResult};
use crate::registry::Registry;

static ENGINES: LazyLock<Registry<Engine>> = LazyLock::new(Registry::default);

/// How long `close` waits for in-flight calls: longer than one classification with the default
/// 300 ms cloud deadline, short enough not to stall an app shutting down.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Runs one bridge operation, turning a panic into [`BridgeError::Panic`] so that no unwind ever
/// crosses the FFI boundary (that would abort the host process).
pub fn guarded<T>(
    operation: &'static str,
    call: impl FnOnce() -> BridgeResult<T>,
) -> BridgeResult<T> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or(Err(BridgeError::Panic(operation)))
}

/// Opens an engine on `data_dir`; `config_json` is a serialised `EngineConfig` (blank = defaults:
/// offline, embedded model). Returns the new handle.
pub fn open(data_dir: &str, config_json: &str) -> BridgeResult<u64> {
    open_with_device_key(data_dir, config_json, None)
}

/// [`open`] with the device key a host's key store handed over (`KeyProvider.deviceKey()`:
/// 32 raw bytes; `None` = no device key). The JSON must not name one too: two sources for one
/// secret would leave the app unsure which one its models are sealed to.
pub fn open_with_device_key(
    data_dir: &str,
    config_json: &str,
    device_key: Option<&[u8]>,
) -> BridgeResult<u64> {
    if data_dir.is_empty() {
        return Err(BridgeError::invalid("dataDir", "is empty"));
    }
    let mut config = parse_config(config_json)?;
    if let Some(bytes) = device_key {
        if config.device_key.is_some() {
            return Err(BridgeError::invalid(
                "configJson",
                "names a device_key while a KeyProvider supplies one",
            ));
        }
        let key = DeviceKey::from_bytes(bytes)
            .map_err(|e| BridgeError::invalid("KeyProvider.deviceKey()", e.to_string()))?;
        config.device_key = Some(key);
    }
    let engine = Engine::open(Path::new(data_dir), config)?;
    Ok(ENGINES.insert(engine))
}

fn parse_config(config_json: &str) -> BridgeResult<EngineConfig> {
    if config_json.trim().is_empty() {
        return Ok(EngineConfig::default());
    }
    serde_json::from_str(config_json).map_err(|e| BridgeError::invalid("configJson", e.to_string()))
}

/// `Engine::classify` as JSON (a `Decision`).
pub fn classify(
    handle: u64,
    sender: &str,
    body: &str,
    received_at_ms: i64,
) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.classify(sender, body, received_at_ms))
}

/// `Engine::report` as JSON (a `ReportOutcome`).
pub fn report(handle: u64, message_id: u64, spam: bool) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.report(message_id, spam)?)
}

/// `Engine::quarantine_list` as a JSON array.
pub fn quarantine_list(handle: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.quarantine_list()?)
}

/// `Engine::quarantine_restore` as JSON (the restored message).
pub fn quarantine_restore(handle: u64, message_id: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.quarantine_restore(message_id)?)
}

/// `Engine::quarantine_delete`; the JSON names the deleted id so every call returns an object.
pub fn quarantine_delete(handle: u64, message_id: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    engine.quarantine_delete(message_id)?;
    to_json(&serde_json::json!({ "deleted": message_id }))
}

/// `Engine::drain_events` as a JSON array (`Released` / `Flagged` events since the last call).
pub fn drain_events(handle: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.drain_events())
}

/// `Engine::drain_queue` as JSON (a `DrainSummary`): re-checks queued messages with the cloud.
pub fn drain_queue(handle: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.drain_queue()?)
}

/// `Engine::sync` as JSON (a `SyncSummary`): pulls hot spam fingerprints and sender rules.
pub fn sync(handle: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.sync()?)
}

/// `Engine::update_model` as JSON (a `ModelUpdate`).
pub fn update_model(handle: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.update_model()?)
}

/// `Engine::stats` as JSON (an `EngineStats`).
pub fn stats(handle: u64) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    to_json(&engine.stats())
}

/// How the user lists a sender: `Engine::allow_sender` / `deny_sender` / `forget_sender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderList {
    Allow,
    Deny,
    Forget,
}

impl SenderList {
    /// The list named by its wire code, shared by both bindings: 0 = allow, 1 = deny,
    /// 2 = forget (the constants in SmsGuard.java and the values of the C `SmsguardSenderList`).
    pub fn from_code(code: i32) -> Option<SenderList> {
        match code {
            0 => Some(SenderList::Allow),
            1 => Some(SenderList::Deny),
            2 => Some(SenderList::Forget),
            _ => None,
        }
    }
}

/// Applies `list` to `sender`; the JSON echoes the change without the sender itself.
pub fn set_sender(handle: u64, sender: &str, list: SenderList) -> BridgeResult<String> {
    let engine = ENGINES.get(handle)?;
    let name = match list {
        SenderList::Allow => {
            engine.allow_sender(sender)?;
            "allow"
        }
        SenderList::Deny => {
            engine.deny_sender(sender)?;
            "deny"
        }
        SenderList::Forget => {
            engine.forget_sender(sender)?;
            "forget"
        }
    };
    to_json(&serde_json::json!({ "sender_list": name }))
}

/// Removes the handle at once (new calls with it fail), waits up to [`CLOSE_WAIT`] for calls
/// already running on other threads, then flushes and closes the engine. If calls are still
/// running after that, the last of them drops the engine (sled still flushes on drop).
pub fn close(handle: u64) -> BridgeResult<()> {
    let mut engine = ENGINES.remove(handle)?;
    let deadline = Instant::now() + CLOSE_WAIT;
    loop {
        match Arc::try_unwrap(engine) {
            Ok(engine) => return Ok(engine.close()?),
            Err(shared) if Instant::now() < deadline => {
                engine = shared;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_still_in_use) => return Ok(()),
        }
    }
}

/// Java has no unsigned long: a negative id cannot name a message.
pub fn message_id_from_java(message_id: i64) -> BridgeResult<u64> {
    u64::try_from(message_id).map_err(|_| BridgeError::invalid("messageId", "is negative"))
}

fn to_json(value: &impl Serialize) -> BridgeResult<String> {
    Ok(serde_json::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_turns_a_panic_into_an_error() {
        let result: BridgeResult<()> = guarded("classify", || panic!("boom"));
        assert!(matches!(result, Err(BridgeError::Panic("classify"))));
    }

    #[test]
    fn guarded_passes_values_and_errors_through() {
        assert_eq!(guarded("x", || Ok(5)).unwrap(), 5);
        let err = guarded::<()>("x", || Err(BridgeError::NullArgument("body"))).unwrap_err();
        assert!(matches!(err, BridgeError::NullArgument("body")));
    }

    #[test]
    fn sender_list_codes_cover_exactly_the_three_lists() {
        assert_eq!(SenderList::from_code(0), Some(SenderList::Allow));
        assert_eq!(SenderList::from_code(1), Some(SenderList::Deny));
        assert_eq!(SenderList::from_code(2), Some(SenderList::Forget));
        for code in [-1, 3, i32::MAX, i32::MIN] {
            assert_eq!(SenderList::from_code(code), None, "code {code}");
        }
    }

    #[test]
    fn negative_java_message_id_is_rejected() {
        assert_eq!(message_id_from_java(42).unwrap(), 42);
        assert!(matches!(
            message_id_from_java(-1),
            Err(BridgeError::InvalidArgument {
                name: "messageId",
                ..
            })
        ));
    }

    #[test]
    fn unknown_handle_is_an_error_for_every_operation() {
        let stale = u64::MAX;
        assert!(matches!(
            classify(stale, "s", "b", 0),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(matches!(
            report(stale, 1, true),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(matches!(
            quarantine_list(stale),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(matches!(
            quarantine_restore(stale, 1),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(matches!(
            quarantine_delete(stale, 1),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(matches!(
            drain_events(stale),
            Err(BridgeError::ClosedHandle(_))
        ));
        assert!(matches!(close(stale), Err(BridgeError::ClosedHandle(_))));
    }

    #[test]
    fn close_waits_for_an_in_flight_call_then_releases_the_store() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let handle = open(path, "").unwrap();
        let in_flight = ENGINES.get(handle).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let worker = {
            let released = Arc::clone(&released);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                released.store(true, Ordering::SeqCst);
                drop(in_flight);
            })
        };
        close(handle).unwrap();
        assert!(
            released.load(Ordering::SeqCst),
            "close returned before the call finished"
        );
        worker.join().unwrap();
        assert!(matches!(
            classify(handle, "+1", "hi", 0),
            Err(BridgeError::ClosedHandle(_))
        ));

        let reopened = open(path, "").unwrap();
        let decision: serde_json::Value =
            serde_json::from_str(&classify(reopened, "+1", "see you soon", 0).unwrap()).unwrap();
        assert_ne!(decision["message_id"], 0, "store still locked: {decision}");
        close(reopened).unwrap();
    }

    #[test]
    fn malformed_config_json_is_an_invalid_argument() {
        let err = parse_config("{not json").unwrap_err();
        assert!(matches!(
            err,
            BridgeError::InvalidArgument {
                name: "configJson",
                ..
            }
        ));
    }

    #[test]
    fn empty_data_dir_is_rejected_before_the_engine_runs() {
        assert!(matches!(
            open("", ""),
            Err(BridgeError::InvalidArgument {
                name: "dataDir",
                ..
            })
        ));
    }
}
