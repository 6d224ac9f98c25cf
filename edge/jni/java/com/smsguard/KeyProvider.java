package com.smsguard;

/**
 * Supplies the engine's device key from the host. On Android the app backs it with the Android
 * Keystore: it keeps the 32-byte X25519 private key wrapped (encrypted) by a Keystore key that
 * never leaves secure hardware, and unwraps it here. The native bridge calls it once, while
 * {@link SmsGuard#open(String, String, KeyProvider)} runs, on the opening thread.
 *
 * <p>The key makes model updates come sealed to this device (a package captured on the wire or
 * copied from another phone does not open) and seals the installed update at rest. The unwrapped
 * key lives in the process's memory while the engine is open: the Keystore protects it at rest,
 * not from a debugger attached to the app.
 */
public interface KeyProvider {
    /**
     * The device's X25519 private key: exactly 32 bytes, or {@code null} for no device key (model
     * updates then come unsealed and are stored under the library's own key). The bridge
     * overwrites the returned array with zeros once it has read it, so return a fresh copy. An
     * exception thrown here fails {@code open} with a {@link SmsGuardException} naming it.
     */
    byte[] deviceKey();
}
