//! The one canonical form of a sender, used wherever a sender is compared: the phone's allow and
//! deny lists, the synced sender rules on the phone, the cloud's sender rules and its
//! sender-behaviour key. One form on both sides means a rule that matches in the cloud matches on
//! the phone too.
//!
//! - A phone number (digits with only `+ - . ( )` and spaces around them) becomes its last
//!   [`PHONE_DIGITS`] digits, the national significant number, so "+44 7700 900123" and
//!   "07700 900123" are one sender; short codes (`10086`, `80088`) are shorter and kept whole.
//! - Anything else (alphanumeric ids such as `PayPal`, `AX-HDFCBK`) is lower-cased with white
//!   space and the separators `- . ( )` removed.

/// Digits kept of a phone number.
pub const PHONE_DIGITS: usize = 10;

/// The canonical form of `sender` (see the module docs).
pub fn canonical_sender(sender: &str) -> String {
    let trimmed = sender.trim();
    if is_phone_like(trimmed) {
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let skip = digits.len().saturating_sub(PHONE_DIGITS);
        return digits[skip..].to_string();
    }
    trimmed
        .chars()
        .filter(|c| !c.is_whitespace() && !is_separator(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_phone_like(sender: &str) -> bool {
    sender.chars().any(|c| c.is_ascii_digit())
        && sender
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '+' || is_separator(c))
}

fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | '(' | ')')
}

#[cfg(test)]
mod tests {
    use super::canonical_sender;

    #[test]
    fn canonical_sender_table() {
        let table = [
            ("+44 7700 900123", "7700900123"),
            ("07700900123", "7700900123"),
            ("(0)7700-900-123", "7700900123"),
            ("+86 138-0013-8000", "3800138000"),
            ("13800138000", "3800138000"),
            ("10086", "10086"),
            ("80088", "80088"),
            (" BankUK ", "bankuk"),
            ("Bank UK", "bankuk"),
            ("PayPal", "paypal"),
            ("AX-HDFCBK", "axhdfcbk"),
            ("Pay.Pal (UK)", "paypaluk"),
            ("\tPAYPAL\n", "paypal"),
            ("招商银行", "招商银行"),
            ("", ""),
        ];
        for (sender, expected) in table {
            assert_eq!(canonical_sender(sender), expected, "{sender:?}");
        }
    }
}
