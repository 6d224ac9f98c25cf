//! Thin bridge from hosts to the edge engine (`smsguard_edge::engine::Engine`): JNI entry points
//! for the Java class `com.smsguard.SmsGuard` (source in `edge/jni/java`) and a plain C ABI
//! (`include/smsguard.h`). The bridge holds no logic: it converts arguments, calls the engine and
//! returns JSON. Engines are addressed by opaque handles into a registry, never raw pointers.
//! Every entry point catches panics; errors never carry message text.

pub mod c_api;
pub mod error;
pub mod jni_api;
mod key_provider;
pub mod ops;
pub mod registry;

pub use error::{BridgeError, BridgeResult};
