package com.smsguard;

/**
 * Thrown by {@link SmsGuard} when the native engine rejects or fails a call: a null or invalid
 * argument, a closed handle, a store or cloud failure, or a native panic caught by the bridge.
 * Unchecked, so Kotlin callers are not forced to declare it. Messages never contain SMS text.
 */
public class SmsGuardException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Called from native code (JNI {@code ThrowNew}) and from the Java wrapper. */
    public SmsGuardException(String message) {
        super(message);
    }
}
