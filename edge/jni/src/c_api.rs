//! Plain C ABI for hosts other than the JVM (iOS, desktop, tests). `include/smsguard.h` is
//! generated from this file by cbindgen (`tests/c_header.rs` checks it is up to date).
//!
//! Conventions: an engine is a `uint64_t` handle (0 = none; stale handles fail cleanly). Functions
//! returning `char *` return a heap JSON string to be released with `smsguard_string_free`, or
//! NULL on failure; functions returning `SmsGuardStatus` return `SMSGUARD_STATUS_OK` on success.
//! After any failure, `smsguard_last_error_code` / `smsguard_last_error_message` describe it (per
//! thread). Message text is passed as UTF-8 pointer + length, so NULs inside it are kept; invalid
//! UTF-8 is replaced with U+FFFD. No function unwinds into the caller: panics become
//! `SMSGUARD_STATUS_PANIC`.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

use crate::error::{BridgeError, BridgeResult};
use crate::ops;

/// Outcome of a C API call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsGuardStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument was unusable (bad config JSON, non-UTF-8 path, ...).
    InvalidArgument = 2,
    /// The handle is closed or was never opened.
    ClosedHandle = 3,
    /// The engine failed the operation (store, cloud, model...).
    Engine = 4,
    /// Internal failure of the bridge (JSON serialisation, ...).
    Internal = 5,
    /// A panic was caught at the boundary.
    Panic = 6,
}

impl From<&BridgeError> for SmsGuardStatus {
    fn from(err: &BridgeError) -> Self {
        match err {
            BridgeError::NullArgument(_) => Self::NullArgument,
            // The Java KeyProvider is a host-supplied argument (C hosts never reach it).
            BridgeError::InvalidArgument { .. } | BridgeError::KeyProvider(_) => {
                Self::InvalidArgument
            }
            BridgeError::ClosedHandle(_) => Self::ClosedHandle,
            BridgeError::Engine(_) => Self::Engine,
            BridgeError::Serialise(_) | BridgeError::Jni(_) => Self::Internal,
            BridgeError::Panic(_) => Self::Panic,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<(SmsGuardStatus, String)>> = const { RefCell::new(None) };
}

fn set_last_error(error: Option<&BridgeError>) {
    let entry = error.map(|e| (SmsGuardStatus::from(e), e.to_string()));
    LAST_ERROR.with(|slot| *slot.borrow_mut() = entry);
}

/// Records the outcome for `smsguard_last_error_*` and returns the success value or `on_error`.
fn finish<T>(result: BridgeResult<T>, on_error: T) -> T {
    match result {
        Ok(value) => {
            set_last_error(None);
            value
        }
        Err(err) => {
            set_last_error(Some(&err));
            on_error
        }
    }
}

fn status_of(result: BridgeResult<()>) -> SmsGuardStatus {
    let status = result
        .as_ref()
        .err()
        .map_or(SmsGuardStatus::Ok, SmsGuardStatus::from);
    finish(result, ());
    status
}

fn json_to_c(json: String) -> BridgeResult<*mut c_char> {
    // serde_json escapes U+0000 inside strings, so JSON never holds a raw NUL.
    let c_string =
        CString::new(json).map_err(|_| BridgeError::invalid("result", "contains NUL"))?;
    Ok(c_string.into_raw())
}

fn json_result(
    operation: &'static str,
    call: impl FnOnce() -> BridgeResult<String>,
) -> *mut c_char {
    finish(
        ops::guarded(operation, || json_to_c(call()?)),
        std::ptr::null_mut(),
    )
}

/// Reads a NUL-terminated UTF-8 C string argument.
///
/// # Safety
/// `value` is NULL or points to a NUL-terminated string valid for reads during the call.
unsafe fn c_str_arg(value: *const c_char, name: &'static str) -> BridgeResult<String> {
    if value.is_null() {
        return Err(BridgeError::NullArgument(name));
    }
    // SAFETY: non-null, and the caller guarantees a valid NUL-terminated string.
    let c_str = unsafe { CStr::from_ptr(value) };
    c_str
        .to_str()
        .map(str::to_owned)
        .map_err(|_| BridgeError::invalid(name, "is not UTF-8"))
}

/// Reads a UTF-8 text argument given as pointer + byte length (NULs allowed, invalid UTF-8
/// replaced with U+FFFD).
///
/// # Safety
/// `value` is NULL or points to `len` bytes valid for reads during the call.
unsafe fn text_arg(value: *const u8, len: usize, name: &'static str) -> BridgeResult<String> {
    if value.is_null() {
        return Err(BridgeError::NullArgument(name));
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes at `value`.
    let bytes = unsafe { std::slice::from_raw_parts(value, len) };
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Opens an engine on `data_dir` with `config_json` (a serialised EngineConfig; NULL or "" means
/// defaults: offline, embedded model). Returns the handle, or 0 on failure.
///
/// # Safety
/// `data_dir` and `config_json` are NULL or NUL-terminated strings valid during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smsguard_open(data_dir: *const c_char, config_json: *const c_char) -> u64 {
    let result = ops::guarded("open", || {
        // SAFETY: forwarded from this function's contract.
        let data_dir = unsafe { c_str_arg(data_dir, "data_dir") }?;
        let config_json = if config_json.is_null() {
            String::new()
        } else {
            // SAFETY: forwarded from this function's contract.
            unsafe { c_str_arg(config_json, "config_json") }?
        };
        ops::open(&data_dir, &config_json)
    });
    finish(result, 0)
}

/// Classifies one message; returns the Decision as JSON (free with `smsguard_string_free`) or NULL.
///
/// # Safety
/// `sender` points to `sender_len` readable bytes and `body` to `body_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smsguard_classify(
    handle: u64,
    sender: *const u8,
    sender_len: usize,
    body: *const u8,
    body_len: usize,
    received_at_ms: i64,
) -> *mut c_char {
    json_result("classify", || {
        // SAFETY: forwarded from this function's contract.
        let sender = unsafe { text_arg(sender, sender_len, "sender") }?;
        // SAFETY: forwarded from this function's contract.
        let body = unsafe { text_arg(body, body_len, "body") }?;
        ops::classify(handle, &sender, &body, received_at_ms)
    })
}

/// Reports a message as spam or not spam; returns the outcome as JSON or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_report(handle: u64, message_id: u64, spam: bool) -> *mut c_char {
    json_result("report", || ops::report(handle, message_id, spam))
}

/// Lists quarantined messages as a JSON array, or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_quarantine_list(handle: u64) -> *mut c_char {
    json_result("quarantine_list", || ops::quarantine_list(handle))
}

/// Restores a quarantined message; returns it as JSON, or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_quarantine_restore(handle: u64, message_id: u64) -> *mut c_char {
    json_result("quarantine_restore", || {
        ops::quarantine_restore(handle, message_id)
    })
}

/// Deletes a quarantined message.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_quarantine_delete(handle: u64, message_id: u64) -> SmsGuardStatus {
    status_of(ops::guarded("quarantine_delete", || {
        ops::quarantine_delete(handle, message_id).map(drop)
    }))
}

/// Returns the engine events (released / flagged messages) since the last call as a JSON array,
/// or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_drain_events(handle: u64) -> *mut c_char {
    json_result("drain_events", || ops::drain_events(handle))
}

/// Re-checks queued messages with the cloud; returns a drain summary as JSON, or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_drain_queue(handle: u64) -> *mut c_char {
    json_result("drain_queue", || ops::drain_queue(handle))
}

/// Pulls hot spam fingerprints and sender rules from the cloud; returns a sync summary as JSON,
/// or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_sync(handle: u64) -> *mut c_char {
    json_result("sync", || ops::sync(handle))
}

/// Fetches a model update, installed only if its signature verifies against the pinned key;
/// returns the outcome as JSON, or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_update_model(handle: u64) -> *mut c_char {
    json_result("update_model", || ops::update_model(handle))
}

/// Engine statistics as JSON, or NULL.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_stats(handle: u64) -> *mut c_char {
    json_result("stats", || ops::stats(handle))
}

/// Which user list `smsguard_set_sender` changes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsGuardSenderList {
    /// Always deliver this sender's messages (contacts).
    Allow = 0,
    /// Always quarantine this sender's messages.
    Deny = 1,
    /// Take the sender off both lists.
    Forget = 2,
}

/// Puts a sender (NUL-terminated UTF-8) on the allow or deny list, or off both. `list` is a
/// `SmsguardSenderList` value, passed as an integer so that an out-of-range value is an
/// `SMSGUARD_STATUS_INVALID_ARGUMENT` rather than undefined behaviour.
///
/// # Safety
/// `sender` is NULL or a NUL-terminated string valid during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smsguard_set_sender(
    handle: u64,
    sender: *const c_char,
    list: i32,
) -> SmsGuardStatus {
    status_of(ops::guarded("set_sender", || {
        // SAFETY: forwarded from this function's contract.
        let sender = unsafe { c_str_arg(sender, "sender") }?;
        let list = ops::SenderList::from_code(list)
            .ok_or_else(|| BridgeError::invalid("list", "not a SmsguardSenderList value"))?;
        ops::set_sender(handle, &sender, list).map(drop)
    }))
}

/// Flushes and closes the engine; the handle is invalid afterwards (using it fails cleanly with
/// `SMSGUARD_STATUS_CLOSED_HANDLE`).
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_close(handle: u64) -> SmsGuardStatus {
    status_of(ops::guarded("close", || ops::close(handle)))
}

/// Releases a string returned by this library. NULL is ignored.
///
/// # Safety
/// `value` is NULL or a pointer returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smsguard_string_free(value: *mut c_char) {
    if value.is_null() {
        return;
    }
    // SAFETY: the caller passes a pointer from `CString::into_raw` in this library, once.
    drop(unsafe { CString::from_raw(value) });
}

/// Status of the last failed call on this thread (`SMSGUARD_STATUS_OK` after a success).
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_last_error_code() -> SmsGuardStatus {
    LAST_ERROR.with(|slot| {
        slot.borrow()
            .as_ref()
            .map_or(SmsGuardStatus::Ok, |(code, _)| *code)
    })
}

/// Message of the last failed call on this thread (free with `smsguard_string_free`), or NULL
/// after a success. Never contains message text.
#[unsafe(no_mangle)]
pub extern "C" fn smsguard_last_error_message() -> *mut c_char {
    let message =
        LAST_ERROR.with(|slot| slot.borrow().as_ref().map(|(_, message)| message.clone()));
    message
        .and_then(|m| CString::new(m).ok())
        .map_or(std::ptr::null_mut(), CString::into_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_message() -> String {
        let raw = smsguard_last_error_message();
        assert!(!raw.is_null());
        // SAFETY: `raw` was just returned by the library and is NUL-terminated.
        let text = unsafe { CStr::from_ptr(raw) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: returned by the library, freed once.
        unsafe { smsguard_string_free(raw) };
        text
    }

    #[test]
    fn null_arguments_are_reported_not_dereferenced() {
        // SAFETY: NULL is allowed by the contract.
        let handle = unsafe { smsguard_open(std::ptr::null(), std::ptr::null()) };
        assert_eq!(handle, 0);
        assert_eq!(smsguard_last_error_code(), SmsGuardStatus::NullArgument);
        assert!(last_message().contains("data_dir"));

        // SAFETY: NULL pointers are allowed by the contract.
        let json = unsafe { smsguard_classify(1, std::ptr::null(), 0, std::ptr::null(), 0, 0) };
        assert!(json.is_null());
        assert_eq!(smsguard_last_error_code(), SmsGuardStatus::NullArgument);
    }

    #[test]
    fn stale_handle_fails_cleanly() {
        let text = b"hello";
        // SAFETY: both slices are valid for their lengths.
        let json = unsafe { smsguard_classify(u64::MAX, text.as_ptr(), 5, text.as_ptr(), 5, 0) };
        assert!(json.is_null());
        assert_eq!(smsguard_last_error_code(), SmsGuardStatus::ClosedHandle);
        assert_eq!(smsguard_close(u64::MAX), SmsGuardStatus::ClosedHandle);
        assert!(smsguard_quarantine_list(0).is_null());
    }

    #[test]
    fn success_clears_the_last_error() {
        assert_eq!(smsguard_close(u64::MAX), SmsGuardStatus::ClosedHandle);
        finish(Ok(()), ());
        assert_eq!(smsguard_last_error_code(), SmsGuardStatus::Ok);
        assert!(smsguard_last_error_message().is_null());
    }

    #[test]
    fn invalid_utf8_text_is_replaced_not_rejected() {
        let bytes = [b'a', 0, 0xff, b'b'];
        // SAFETY: `bytes` is valid for its length.
        let text = unsafe { text_arg(bytes.as_ptr(), bytes.len(), "body") }.unwrap();
        assert_eq!(text, "a\u{0}\u{fffd}b");
    }

    #[test]
    fn c_sender_list_values_are_the_shared_codes() {
        let pairs = [
            (SmsGuardSenderList::Allow, ops::SenderList::Allow),
            (SmsGuardSenderList::Deny, ops::SenderList::Deny),
            (SmsGuardSenderList::Forget, ops::SenderList::Forget),
        ];
        for (c_value, list) in pairs {
            assert_eq!(ops::SenderList::from_code(c_value as i32), Some(list));
        }
    }

    #[test]
    fn freeing_null_is_a_no_op() {
        // SAFETY: NULL is allowed.
        unsafe { smsguard_string_free(std::ptr::null_mut()) };
    }
}
