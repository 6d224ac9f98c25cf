//! JNI entry points for `com.smsguard.SmsGuard` (edge/jni/java). Each one upgrades the JNI env
//! with `EnvUnowned::with_env` (which also catches panics), converts arguments, calls `ops`
//! under [`ops::guarded`], and maps any failure to a thrown `SmsGuardException`.
//!
//! Strings are read as UTF-16 (`GetStringRegion`) and decoded lossily: Java strings may hold lone
//! surrogates and NULs, which `GetStringUTFChars` ("modified UTF-8") would mangle or reject.

use jni::errors::ErrorPolicy;
use jni::objects::{JClass, JObject, JString};
use jni::refs::Reference as _;
use jni::strings::JNIStr;
use jni::sys::{jboolean, jint, jlong};
use jni::{jni_str, Env, EnvUnowned};

use crate::error::{BridgeError, BridgeResult};
use crate::key_provider;
use crate::ops::{self, SenderList};

const EXCEPTION_CLASS: &JNIStr = jni_str!("com/smsguard/SmsGuardException");

/// Error policy: throw `SmsGuardException` with the error's message (never message text) and
/// return the type's default (0 / null) to Java, which the pending exception overrides.
#[derive(Debug)]
struct ThrowSmsGuardException;

impl<T: Default> ErrorPolicy<T, BridgeError> for ThrowSmsGuardException {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        err: BridgeError,
    ) -> jni::errors::Result<T> {
        throw(env, &err.to_string())?;
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        _payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        throw(env, "internal panic in the native bridge (caught)")?;
        Ok(T::default())
    }
}

/// Throws unless a Java exception (e.g. OutOfMemoryError from a JNI call) is already pending:
/// that one is more precise and must not be replaced.
fn throw(env: &mut Env<'_>, message: &str) -> jni::errors::Result<()> {
    if env.exception_check() {
        return Ok(());
    }
    env.throw_new(EXCEPTION_CLASS, jni::strings::JNIString::from(message))
}

/// Decodes a non-null Java string via UTF-16, replacing lone surrogates with U+FFFD and keeping
/// NULs and supplementary characters intact.
fn rust_string(env: &Env<'_>, value: &JString<'_>, name: &'static str) -> BridgeResult<String> {
    if value.is_null() {
        return Err(BridgeError::NullArgument(name));
    }
    Ok(String::from_utf16_lossy(&utf16_units(env, value)?))
}

fn utf16_units(env: &Env<'_>, value: &JString<'_>) -> BridgeResult<Vec<u16>> {
    if env.exception_check() {
        return Err(jni::errors::Error::JavaException.into());
    }
    let raw_env = env.get_raw();
    let raw_string = value.as_raw();
    let functions = function_table(env);
    // SAFETY: every JVM provides the JNI 1.1 function table, so this union view is initialised.
    let get_length = unsafe { functions.v1_1.GetStringLength };
    // SAFETY: `raw_env` is this thread's live JNIEnv, `raw_string` a non-null local reference to a
    // java.lang.String, and no exception is pending.
    let length = unsafe { get_length(raw_env, raw_string) };
    let mut units = vec![0_u16; usize::try_from(length).unwrap_or(0)];
    if units.is_empty() {
        return Ok(units);
    }
    // SAFETY: JNI 1.2 (GetStringRegion) is provided by every JVM and Android runtime.
    let get_region = unsafe { functions.v1_2.GetStringRegion };
    // SAFETY: same env and string as above; `units` holds exactly `length` UTF-16 units, the
    // string's full length (strings are immutable), so the region [0, length) is in bounds.
    unsafe { get_region(raw_env, raw_string, 0, length, units.as_mut_ptr()) };
    Ok(units)
}

/// The JNI function table of this thread's env.
fn function_table<'env>(env: &'env Env<'_>) -> &'env jni::sys::JNINativeInterface_ {
    let raw_env = env.get_raw();
    // SAFETY: `Env` only exists for a valid, non-null JNIEnv pointer of the current thread.
    let table = unsafe { *raw_env };
    // SAFETY: a valid JNIEnv points to the VM's function table, which outlives the env.
    unsafe { &*table }
}

fn java_string<'local>(env: &mut Env<'local>, json: &str) -> BridgeResult<JString<'local>> {
    Ok(JString::from_str(env, json)?)
}

/// Handles are issued from 1 upwards; a negative `jlong` is no handle at all (0 is never issued).
fn handle_from_java(handle: jlong) -> u64 {
    u64::try_from(handle).unwrap_or(0)
}

fn handle_to_java(handle: u64) -> BridgeResult<jlong> {
    jlong::try_from(handle).map_err(|_| BridgeError::invalid("handle", "out of range"))
}

/// Shared body of the entry points that take only the handle and return JSON.
fn handle_call<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    handle: jlong,
    operation: &'static str,
    call: fn(u64) -> BridgeResult<String>,
) -> JString<'caller> {
    unowned_env
        .with_env(|env| -> BridgeResult<JString<'caller>> {
            let handle = handle_from_java(handle);
            let json = ops::guarded(operation, || call(handle))?;
            java_string(env, &json)
        })
        .resolve::<ThrowSmsGuardException>()
}

/// Shared body of the entry points that take the handle and a message id (checked before the
/// call) and return JSON.
fn message_call<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    handle: jlong,
    message_id: jlong,
    operation: &'static str,
    call: impl FnOnce(u64, u64) -> BridgeResult<String>,
) -> JString<'caller> {
    unowned_env
        .with_env(|env| -> BridgeResult<JString<'caller>> {
            let message_id = ops::message_id_from_java(message_id)?;
            let handle = handle_from_java(handle);
            let json = ops::guarded(operation, || call(handle, message_id))?;
            java_string(env, &json)
        })
        .resolve::<ThrowSmsGuardException>()
}

/// `static native long nativeOpen(String dataDir, String configJson)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeOpen<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    data_dir: JString<'caller>,
    config_json: JString<'caller>,
) -> jlong {
    unowned_env
        .with_env(|env| -> BridgeResult<jlong> {
            let data_dir = rust_string(env, &data_dir, "dataDir")?;
            let config_json = rust_string(env, &config_json, "configJson")?;
            handle_to_java(ops::guarded("open", || ops::open(&data_dir, &config_json))?)
        })
        .resolve::<ThrowSmsGuardException>()
}

/// `static native long nativeOpenWithKeys(String dataDir, String configJson, KeyProvider keys)`:
/// the device key comes from the host's provider, called once here.
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeOpenWithKeys<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    data_dir: JString<'caller>,
    config_json: JString<'caller>,
    keys: JObject<'caller>,
) -> jlong {
    unowned_env
        .with_env(|env| -> BridgeResult<jlong> {
            let data_dir = rust_string(env, &data_dir, "dataDir")?;
            let config_json = rust_string(env, &config_json, "configJson")?;
            let device_key = key_provider::device_key(env, &keys)?;
            handle_to_java(ops::guarded("open", || {
                ops::open_with_device_key(
                    &data_dir,
                    &config_json,
                    device_key.as_ref().map(|key| key.as_slice()),
                )
            })?)
        })
        .resolve::<ThrowSmsGuardException>()
}

/// `static native String nativeClassify(long handle, String sender, String body, long receivedAtMs)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeClassify<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    sender: JString<'caller>,
    body: JString<'caller>,
    received_at_ms: jlong,
) -> JString<'caller> {
    unowned_env
        .with_env(|env| -> BridgeResult<JString<'caller>> {
            let sender = rust_string(env, &sender, "sender")?;
            let body = rust_string(env, &body, "body")?;
            let handle = handle_from_java(handle);
            let json = ops::guarded("classify", || {
                ops::classify(handle, &sender, &body, received_at_ms)
            })?;
            java_string(env, &json)
        })
        .resolve::<ThrowSmsGuardException>()
}

/// `static native String nativeReport(long handle, long messageId, boolean spam)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeReport<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    message_id: jlong,
    spam: jboolean,
) -> JString<'caller> {
    message_call(unowned_env, handle, message_id, "report", |handle, id| {
        ops::report(handle, id, spam)
    })
}

/// `static native String nativeQuarantineList(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeQuarantineList<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JString<'caller> {
    handle_call(unowned_env, handle, "quarantineList", ops::quarantine_list)
}

/// `static native String nativeQuarantineRestore(long handle, long messageId)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeQuarantineRestore<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    message_id: jlong,
) -> JString<'caller> {
    message_call(
        unowned_env,
        handle,
        message_id,
        "quarantineRestore",
        ops::quarantine_restore,
    )
}

/// `static native String nativeQuarantineDelete(long handle, long messageId)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeQuarantineDelete<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    message_id: jlong,
) -> JString<'caller> {
    message_call(
        unowned_env,
        handle,
        message_id,
        "quarantineDelete",
        ops::quarantine_delete,
    )
}

/// `static native String nativeDrainEvents(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeDrainEvents<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JString<'caller> {
    handle_call(unowned_env, handle, "drainEvents", ops::drain_events)
}

/// `static native String nativeDrainQueue(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeDrainQueue<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JString<'caller> {
    handle_call(unowned_env, handle, "drainQueue", ops::drain_queue)
}

/// `static native String nativeSync(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeSync<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JString<'caller> {
    handle_call(unowned_env, handle, "sync", ops::sync)
}

/// `static native String nativeUpdateModel(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeUpdateModel<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JString<'caller> {
    handle_call(unowned_env, handle, "updateModel", ops::update_model)
}

/// `static native String nativeStats(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeStats<'caller>(
    unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JString<'caller> {
    handle_call(unowned_env, handle, "stats", ops::stats)
}

/// `static native String nativeSetSender(long handle, String sender, int list)`; `list` is
/// 0 = allow, 1 = deny, 2 = forget (constants in SmsGuard.java).
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeSetSender<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    sender: JString<'caller>,
    list: jint,
) -> JString<'caller> {
    unowned_env
        .with_env(|env| -> BridgeResult<JString<'caller>> {
            let sender = rust_string(env, &sender, "sender")?;
            let list = SenderList::from_code(list)
                .ok_or_else(|| BridgeError::invalid("list", "must be 0, 1 or 2"))?;
            let handle = handle_from_java(handle);
            let json = ops::guarded("setSender", || ops::set_sender(handle, &sender, list))?;
            java_string(env, &json)
        })
        .resolve::<ThrowSmsGuardException>()
}

/// `static native void nativeClose(long handle)`
#[unsafe(no_mangle)]
pub extern "system" fn Java_com_smsguard_SmsGuard_nativeClose<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) {
    unowned_env
        .with_env(|_env| -> BridgeResult<()> {
            let handle = handle_from_java(handle);
            ops::guarded("close", || ops::close(handle))
        })
        .resolve::<ThrowSmsGuardException>()
}
