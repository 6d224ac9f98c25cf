import com.smsguard.SmsGuard;
import com.smsguard.SmsGuardException;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drives com.smsguard.SmsGuard through one scripted session and prints one line per step:
 * {@code step<TAB>json} or {@code step<TAB>EXCEPTION<TAB>class: message}. The Rust test that runs
 * it (edge/jni/tests/jvm_offline.rs, tests/tests/jvm.rs) parses the lines and asserts on them.
 *
 * <p>Usage: {@code java -cp ... SmsGuardScenario DATA_DIR CONFIG_JSON}
 */
public final class SmsGuardScenario {
    static final String SPAM =
            "WINNER!! As a valued customer you have been selected to receive a £900 prize reward!"
                    + " To claim call 09061701461. Claim code KL341. Valid 12 hours only.";
    static final String HAM = "Are we still meeting for lunch tomorrow at 1? I'll bring the notes.";
    /** A lone high surrogate, an embedded NUL and a supplementary character (emoji). */
    static final String ODD_BODY =
            "WINNER!! \uD800 You have been selected for a £900 prize\u0000 reward \uD83D\uDE00 call 09061701461 to claim";
    static final String ODD_BODY_REPLACED = ODD_BODY.replace('\uD800', '\uFFFD');
    static final String ODD_BODY_BEFORE_NUL = ODD_BODY_REPLACED.substring(0, ODD_BODY_REPLACED.indexOf('\u0000'));
    /** UTF-8 whatever the platform locale, so the Rust side can parse non-ASCII JSON. */
    static final PrintStream OUT =
            new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    static final Pattern MESSAGE_ID = Pattern.compile("\"message_id\"\\s*:\\s*(\\d+)");

    public static void main(String[] args) {
        String dataDir = args[0];
        String config = args[1];
        long now = System.currentTimeMillis();
        SmsGuard guard = SmsGuard.open(dataDir, config);

        String spam = step("classify_spam", () -> guard.classify("+447700900123", SPAM, now));
        step("classify_ham", () -> guard.classify("+447700900456", HAM, now + 1));
        step("classify_odd", () -> guard.classify("+44\uDC00", ODD_BODY, now + 2));
        step("classify_odd_replaced", () -> guard.classify("+44\uFFFD", ODD_BODY_REPLACED, now + 3));
        step("classify_odd_before_nul", () -> guard.classify("+44\uFFFD", ODD_BODY_BEFORE_NUL, now + 4));
        long spamId = messageId(spam);
        step("report_spam", () -> guard.report(spamId, true));
        step("quarantine_list", guard::quarantineList);
        step("quarantine_op_list", () -> guard.quarantine("list", 0));
        step("quarantine_bad_op", () -> guard.quarantine("purge", spamId));
        step("drain_events", guard::drainEvents);
        step("allow_sender", () -> guard.allowSender("+447700900111"));
        step("classify_allowed_spam", () -> guard.classify("+447700900111", SPAM, now + 5));
        step("deny_sender", () -> guard.denySender("+447700900222"));
        step("classify_denied_ham", () -> guard.classify("+447700900222", HAM, now + 6));
        step("forget_sender", () -> guard.forgetSender("+447700900222"));
        step("null_sender_rule", () -> guard.denySender(null));
        step("stats", guard::stats);
        step("drain_queue", guard::drainQueue);
        step("sync", guard::sync);
        step("update_model", guard::updateModel);
        step("null_body", () -> guard.classify("+447700900123", null, now));
        step("null_sender", () -> guard.classify(null, HAM, now));
        step("negative_id", () -> guard.report(-5, true));
        step("restore_unknown", () -> guard.quarantineRestore(Long.MAX_VALUE));

        guard.close();
        guard.close(); // idempotent
        step("classify_after_close", () -> guard.classify("+447700900123", HAM, now));
        step("report_after_close", () -> guard.report(spamId, false));
        step("list_after_close", guard::quarantineList);

        try (SmsGuard reopened = SmsGuard.open(dataDir, config)) {
            step("reopen_quarantine_list", reopened::quarantineList);
            step("reopen_restore_spam", () -> reopened.quarantineRestore(spamId));
            step("reopen_quarantine_list_after_restore", reopened::quarantineList);
        }
        concurrentCallsRacingClose(dataDir + "-concurrent", config, now);
        step("open_null_dir", () -> Long.toString(SmsGuard.open(null, "").hashCode()));
        step("open_bad_config", () -> Long.toString(SmsGuard.open(dataDir + "-other", "{not json").hashCode()));
        OUT.println("done");
    }

    /**
     * Four threads classify while the main thread closes the engine under them: every call must
     * either return a decision or throw SmsGuardException (no crash, no other exception), and the
     * store must be reusable once the threads are done.
     */
    static void concurrentCallsRacingClose(String dataDir, String config, long now) {
        SmsGuard guard = SmsGuard.open(dataDir, config);
        AtomicInteger decided = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        AtomicInteger unexpected = new AtomicInteger();
        CountDownLatch started = new CountDownLatch(4);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            final int thread = t;
            Thread worker = new Thread(() -> {
                started.countDown();
                for (int i = 0; i < 25; i++) {
                    try {
                        guard.classify("+4477009" + thread, HAM + " #" + i, now + i);
                        decided.incrementAndGet();
                    } catch (SmsGuardException e) {
                        refused.incrementAndGet();
                    } catch (RuntimeException e) {
                        unexpected.incrementAndGet();
                    }
                }
            });
            threads.add(worker);
            worker.start();
        }
        try {
            started.await();
            Thread.sleep(20);
            guard.close();
            for (Thread worker : threads) {
                worker.join();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        OUT.println("concurrent\t{\"decided\":" + decided.get() + ",\"refused\":" + refused.get()
                + ",\"unexpected\":" + unexpected.get() + "}");
        step("concurrent_reopen", () -> {
            try (SmsGuard again = SmsGuard.open(dataDir, config)) {
                return again.classify("+447700900456", HAM, now);
            }
        });
    }

    static String step(String name, Supplier<String> call) {
        try {
            String result = call.get();
            OUT.println(name + "\t" + result);
            return result;
        } catch (SmsGuardException e) {
            OUT.println(name + "\tEXCEPTION\t" + e.getClass().getName() + ": " + e.getMessage());
            return "";
        }
    }

    static long messageId(String decisionJson) {
        Matcher m = MESSAGE_ID.matcher(decisionJson);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }
}
