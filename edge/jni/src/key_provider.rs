//! Calls the host's `com.smsguard.KeyProvider` (edge/jni/java) while an engine opens: reads the
//! device key it returns, overwrites the Java array with zeros, and hands the bytes on in a
//! buffer zeroised on drop. A provider that throws is caught here and named in the error, so the
//! caller sees one `SmsGuardException` as for every other failure. Plain JNI calls, no `unsafe`.

use jni::errors::Error as JniError;
use jni::objects::{JByteArray, JObject};
use jni::refs::Reference as _;
use jni::{jni_sig, jni_str, Env};
use zeroize::Zeroizing;

use crate::error::{BridgeError, BridgeResult};

/// `keys.deviceKey()`: `None` when the provider returns `null` (no device key).
pub(crate) fn device_key(
    env: &mut Env<'_>,
    keys: &JObject<'_>,
) -> BridgeResult<Option<Zeroizing<Vec<u8>>>> {
    if keys.is_null() {
        return Err(BridgeError::NullArgument("keys"));
    }
    let returned = match env.call_method(keys, jni_str!("deviceKey"), jni_sig!("()[B"), &[]) {
        Ok(value) => value.l()?,
        Err(JniError::JavaException) => return Err(provider_exception(env)),
        Err(other) => return Err(other.into()),
    };
    if returned.is_null() {
        return Ok(None);
    }
    let array = env.cast_local::<JByteArray>(returned)?;
    let bytes = Zeroizing::new(env.convert_byte_array(&array)?);
    // The provider's copy is the one place the key lies on the Java heap: wipe it.
    array.set_region(env, 0, &vec![0_i8; bytes.len()])?;
    Ok(Some(bytes))
}

/// Clears the exception the provider threw and names it (class and message; the provider's own
/// words, never message text).
fn provider_exception(env: &Env<'_>) -> BridgeError {
    match env.exception_catch() {
        Err(JniError::CaughtJavaException { name, msg, .. }) => {
            BridgeError::KeyProvider(format!("{name}: {msg}"))
        }
        Err(other) => other.into(),
        Ok(()) => BridgeError::KeyProvider("failed without an exception".into()),
    }
}
