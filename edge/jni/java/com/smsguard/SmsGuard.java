package com.smsguard;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The on-device SMS spam filter: a thin wrapper over the native smsguard engine
 * ({@code libsmsguard_jni}).
 *
 * <p>Results are JSON strings produced by the engine (decode them with the JSON library of the
 * app). Every method throws {@link SmsGuardException} on failure, including when called after
 * {@link #close()}. Instances are thread-safe. Usage from Kotlin:
 *
 * <pre>{@code
 * SmsGuard.open(filesDir.path, "{}").use { guard ->
 *     val decisionJson = guard.classify(sender, body, System.currentTimeMillis())
 * }
 * }</pre>
 *
 * <p>The native library is loaded with {@code System.loadLibrary("smsguard_jni")}, or from the
 * absolute path in the system property {@code smsguard.library.path} when that is set.
 */
public final class SmsGuard implements AutoCloseable {
    static {
        String explicitPath = System.getProperty("smsguard.library.path");
        if (explicitPath != null && !explicitPath.isEmpty()) {
            System.load(explicitPath);
        } else {
            System.loadLibrary("smsguard_jni");
        }
    }

    // Values of `list` in nativeSetSender (mirrored in jni_api.rs).
    private static final int SENDER_ALLOW = 0;
    private static final int SENDER_DENY = 1;
    private static final int SENDER_FORGET = 2;

    /** Opaque id of the native engine; never a pointer, so a stale id cannot crash the process. */
    private final long handle;
    private final AtomicBoolean closed = new AtomicBoolean(false);

    private SmsGuard(long handle) {
        this.handle = handle;
    }

    /**
     * Opens (or creates) the engine store in {@code dataDir}.
     *
     * @param configJson a serialised engine configuration; {@code null} or {@code ""} means the
     *     defaults (offline, embedded model); omitted keys keep their defaults. Example:
     *     {@code {"cloud": {"url": "https://cloud.example:50051", "api_key": "...",
     *     "deadline_ms": 300, "device_id": "install-uuid"}, "pinned_model_key": "hex"}}.
     *     {@code "store_key"} (64 hex digits: a 32-byte secret the app keeps wrapped by the Android
     *     Keystore) seals message senders and bodies in the store; the store then needs it to open.
     *     {@code "device_key"} (64 hex digits: the device's X25519 private key, kept the same way)
     *     makes model updates come sealed to this device and be stored sealed under it.
     *     {@code "privacy": "private"} asks the cloud only through homomorphically encrypted
     *     features: no text, sender or fingerprint leaves the phone (decisions then say
     *     {@code "source": "private"}).
     */
    public static SmsGuard open(String dataDir, String configJson) {
        return new SmsGuard(nativeOpen(dataDir, configJson == null ? "" : configJson));
    }

    /**
     * Opens the engine like {@link #open(String, String)}, with the device key taken from
     * {@code keys} (called once, before this returns) instead of {@code "device_key"} in the
     * JSON, which must then be absent. A wrong-length key or an exception from the provider
     * fails the open with a {@link SmsGuardException}.
     */
    public static SmsGuard open(String dataDir, String configJson, KeyProvider keys) {
        return new SmsGuard(nativeOpenWithKeys(dataDir, configJson == null ? "" : configJson, keys));
    }

    /** Opens the engine with the default configuration (offline, embedded model). */
    public static SmsGuard open(String dataDir) {
        return open(dataDir, "");
    }

    /**
     * Classifies one incoming SMS. Never fails open: if the model, the store and the cloud all fail,
     * the decision says to deliver. Lone surrogates in the strings are replaced with U+FFFD.
     *
     * @return the decision as JSON: message_id, label, spam_score, action, source, timings...
     */
    public String classify(String sender, String body, long receivedAtMs) {
        return nativeClassify(handle, sender, body, receivedAtMs);
    }

    /** Records the user's verdict ("spam" / "not spam") for a classified message. */
    public String report(long messageId, boolean spam) {
        return nativeReport(handle, messageId, spam);
    }

    /** Lists the quarantined messages as a JSON array. */
    public String quarantineList() {
        return nativeQuarantineList(handle);
    }

    /** Moves a message out of quarantine and returns it as JSON. */
    public String quarantineRestore(long messageId) {
        return nativeQuarantineRestore(handle, messageId);
    }

    /** Deletes a quarantined message for good; returns {@code {"deleted":id}}. */
    public String quarantineDelete(long messageId) {
        return nativeQuarantineDelete(handle, messageId);
    }

    /**
     * One entry point for the quarantine: {@code op} is {@code "list"} (messageId ignored),
     * {@code "restore"} or {@code "delete"}.
     */
    public String quarantine(String op, long messageId) {
        if (op == null) {
            throw new SmsGuardException("argument `op` must not be null");
        }
        switch (op) {
            case "list":
                return quarantineList();
            case "restore":
                return quarantineRestore(messageId);
            case "delete":
                return quarantineDelete(messageId);
            default:
                throw new SmsGuardException("unknown quarantine op (expected list, restore or delete)");
        }
    }

    /**
     * Returns the events since the last call as a JSON array: messages the cloud released from
     * quarantine or flagged after delivery. Poll it, e.g. after the network comes back.
     */
    public String drainEvents() {
        return nativeDrainEvents(handle);
    }

    /**
     * Re-checks queued messages with the cloud (call it when the network comes back); messages
     * the cloud releases or flags then show up in {@link #drainEvents()}.
     *
     * @return a summary as JSON: rechecked, released, flagged, reports_sent, dropped, remaining
     * @throws SmsGuardException also when no cloud is configured or it is unreachable
     */
    public String drainQueue() {
        return nativeDrainQueue(handle);
    }

    /** Pulls hot spam fingerprints and sender rules from the cloud; returns a summary as JSON. */
    public String sync() {
        return nativeSync(handle);
    }

    /**
     * Downloads the current model and installs it only if its signature verifies against the
     * {@code pinned_model_key} of the configuration; otherwise the old model stays and this throws.
     */
    public String updateModel() {
        return nativeUpdateModel(handle);
    }

    /** A snapshot of the engine (counters, queue length, model version, failures) as JSON. */
    public String stats() {
        return nativeStats(handle);
    }

    /** Always delivers this sender's messages (e.g. a contact). */
    public String allowSender(String sender) {
        return nativeSetSender(handle, sender, SENDER_ALLOW);
    }

    /** Always quarantines this sender's messages. */
    public String denySender(String sender) {
        return nativeSetSender(handle, sender, SENDER_DENY);
    }

    /** Takes a sender off both the allow and the deny list. */
    public String forgetSender(String sender) {
        return nativeSetSender(handle, sender, SENDER_FORGET);
    }

    /**
     * Flushes and closes the engine. Idempotent; any other call afterwards throws
     * {@link SmsGuardException}.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            nativeClose(handle);
        }
    }

    // The native side validates every argument (nulls included) and the handle, so calls after
    // close() reach it and fail there with an exception rather than being filtered here.
    private static native long nativeOpen(String dataDir, String configJson);

    private static native long nativeOpenWithKeys(String dataDir, String configJson, KeyProvider keys);

    private static native String nativeClassify(long handle, String sender, String body, long receivedAtMs);

    private static native String nativeReport(long handle, long messageId, boolean spam);

    private static native String nativeQuarantineList(long handle);

    private static native String nativeQuarantineRestore(long handle, long messageId);

    private static native String nativeQuarantineDelete(long handle, long messageId);

    private static native String nativeDrainEvents(long handle);

    private static native String nativeDrainQueue(long handle);

    private static native String nativeSync(long handle);

    private static native String nativeUpdateModel(long handle);

    private static native String nativeStats(long handle);

    private static native String nativeSetSender(long handle, String sender, int list);

    private static native void nativeClose(long handle);
}
