/* Drives the C ABI (include/smsguard.h) through one session and prints one line per step:
 * "step<TAB>json" or "step<TAB>ERROR<TAB>code<TAB>message". Run by tests/c_abi.rs.
 * Usage: smoke DATA_DIR */
#include <stdio.h>
#include <string.h>

#include "smsguard.h"

static void print_error(const char *step) {
    char *message = smsguard_last_error_message();
    printf("%s\tERROR\t%d\t%s\n", step, (int)smsguard_last_error_code(), message ? message : "(none)");
    smsguard_string_free(message);
}

/* Prints and frees a JSON result (or the error when it is NULL). */
static void print_json(const char *step, char *json) {
    if (json == NULL) {
        print_error(step);
        return;
    }
    printf("%s\t%s\n", step, json);
    smsguard_string_free(json);
}

static char *classify(uint64_t handle, const char *sender, const char *body, size_t body_len) {
    return smsguard_classify(handle, (const uint8_t *)sender, strlen(sender), (const uint8_t *)body,
                             body_len, 1700000000000);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        return 2;
    }
    uint64_t handle = smsguard_open(argv[1], NULL);
    if (handle == 0) {
        print_error("open");
        return 1;
    }
    printf("open\t{\"handle\":%llu}\n", (unsigned long long)handle);

    static const char spam[] = "WINNER!! You have been selected for a \xC2\xA3" "900 prize reward. "
                               "Call 09061701461 to claim. Valid 12 hours only.";
    /* An embedded NUL and a byte that is not UTF-8 (replaced with U+FFFD). */
    static const char odd[] = "WINNER!! \xFF You have been selected for a \xC2\xA3" "900 prize reward\0 "
                              "call 09061701461 to claim";
    print_json("classify_spam", classify(handle, "+447700900123", spam, sizeof spam - 1));
    print_json("classify_ham", classify(handle, "+447700900456", "See you at lunch tomorrow?", 26));
    print_json("classify_odd", classify(handle, "+447700900789", odd, sizeof odd - 1));
    print_json("quarantine_list", smsguard_quarantine_list(handle));
    printf("set_sender_bad_list\t{\"status\":%d}\n", (int)smsguard_set_sender(handle, "+447700900222", 7));
    printf("deny_sender\t{\"status\":%d}\n",
           (int)smsguard_set_sender(handle, "+447700900222", SMSGUARD_SENDER_LIST_DENY));
    print_json("classify_denied", classify(handle, "+447700900222", "See you at lunch tomorrow?", 26));
    print_json("stats", smsguard_stats(handle));
    print_json("sync_offline", smsguard_sync(handle));
    print_json("null_body", smsguard_classify(handle, (const uint8_t *)"x", 1, NULL, 0, 0));

    SmsguardStatus closed = smsguard_close(handle);
    printf("close\t{\"status\":%d}\n", (int)closed);
    print_json("classify_after_close", classify(handle, "+447700900123", spam, sizeof spam - 1));
    printf("close_again\t{\"status\":%d}\n", (int)smsguard_close(handle));
    printf("done\n");
    return 0;
}
