import com.smsguard.KeyProvider;
import com.smsguard.SmsGuard;
import com.smsguard.SmsGuardException;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;

/**
 * Opens com.smsguard.SmsGuard with a Java {@link KeyProvider} (as an app backs one with the
 * Android Keystore), asks for a model update and classifies, printing one line per step like
 * SmsGuardScenario. The Rust tests (edge/jni/tests/jvm_offline.rs, tests/tests/jvm.rs) assert on
 * the lines.
 *
 * <p>Usage: {@code java -cp ... KeyProviderScenario DATA_DIR CONFIG_JSON KEY} where KEY is 64 hex
 * digits, {@code null} (no device key), {@code short} (31 bytes) or {@code throw}.
 */
public final class KeyProviderScenario {
    static final PrintStream OUT =
            new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    static final String SPAM =
            "WINNER!! As a valued customer you have been selected to receive a £900 prize reward!"
                    + " To claim call 09061701461. Claim code KL341. Valid 12 hours only.";

    /** A provider that hands out a fresh copy of one key and remembers what it handed out. */
    static final class TestKeyProvider implements KeyProvider {
        final String spec;
        int calls;
        byte[] lastReturned;

        TestKeyProvider(String spec) {
            this.spec = spec;
        }

        @Override
        public byte[] deviceKey() {
            calls++;
            switch (spec) {
                case "null":
                    return null;
                case "short":
                    lastReturned = new byte[31];
                    return lastReturned;
                case "throw":
                    throw new IllegalStateException("the keystore is locked");
                default:
                    lastReturned = hex(spec);
                    return lastReturned;
            }
        }
    }

    public static void main(String[] args) {
        String dataDir = args[0];
        String config = args[1];
        TestKeyProvider keys = new TestKeyProvider(args[2]);
        SmsGuard guard;
        try {
            guard = SmsGuard.open(dataDir, config, keys);
            OUT.println("open\t{}");
        } catch (SmsGuardException e) {
            OUT.println("open\tEXCEPTION\t" + e.getClass().getName() + ": " + e.getMessage());
            guard = null;
        }
        OUT.println("provider\t{\"calls\":" + keys.calls + ",\"returned_zeroed\":" + zeroed(keys.lastReturned) + "}");
        if (guard != null) {
            SmsGuard open = guard;
            step("stats_before", open::stats);
            step("update_model", open::updateModel);
            step("stats_after", open::stats);
            step("classify_spam", () -> open.classify("+447700900123", SPAM, System.currentTimeMillis()));
            open.close();
        }
        step("null_provider", () -> Long.toString(SmsGuard.open(dataDir + "-null", "", null).hashCode()));
        OUT.println("done");
    }

    static String zeroed(byte[] returned) {
        if (returned == null) {
            return "null";
        }
        for (byte b : returned) {
            if (b != 0) {
                return "false";
            }
        }
        return "true";
    }

    static byte[] hex(String text) {
        byte[] bytes = new byte[text.length() / 2];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
        }
        return bytes;
    }

    static void step(String name, Supplier<String> call) {
        try {
            OUT.println(name + "\t" + call.get());
        } catch (SmsGuardException e) {
            OUT.println(name + "\tEXCEPTION\t" + e.getClass().getName() + ": " + e.getMessage());
        }
    }
}
