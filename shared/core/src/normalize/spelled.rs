//! Stage 8b (pipeline version 5): a phone number spelled out to slip past a filter
//! (`zero eight zero zero, one one two, three four five six`, `壹叁捌-贰伍柒陆-零玖肆叁`,
//! `1五8二二零六七七九八`) is read back as digits, which stage 9 then masks like any other.
//!
//! A chain is a run of digits, each an ASCII digit, a Chinese numeral (`零〇一二…九`, the
//! financial `壹贰叁…玖`, `幺` as phone numbers are read aloud) or an English digit word
//! standing alone, joined by nothing or by short runs of spaces, dashes and commas. It is read
//! only when it holds [`MIN_CHAIN_DIGITS`] digits, enough for a phone number, of which
//! [`MIN_SPELLED_DIGITS`] are spelled: counting words (`五六七八九`, `三三两两`, `七七四十九`)
//! never reach seven digits without a `十`, `百` or `两` that breaks the chain, and plain ASCII
//! numbers are stage 9's alone. Each spelled digit read counts one [`Transform::Leetspeak`],
//! as leetspeak counts the characters it changes: a digit written as something else, like a
//! `0` for an `o`. The count keeps the disguise visible to the phone's offline rule and the
//! cloud's variant scorer: once read, the number is one `<phone>` like the thousands the models
//! saw in ham and spam alike.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

use super::*;

/// Digits a chain needs to be read: the shortest phone numbers stage 9 masks.
const MIN_CHAIN_DIGITS: usize = 7;
/// Spelled digits a chain needs, so that a plain number is never touched.
const MIN_SPELLED_DIGITS: usize = 3;
/// Longest run of spaces, dashes and commas allowed between two digits of a chain
/// (`five, zero`); a run of whitespace counts as one.
const MAX_GAP_CHARS: usize = 3;

/// Every spelled digit and the digit it stands for: English words (lower case; case folding ran
/// before) and Chinese numerals. The chain scan and the prefilter both read this one table.
const SPELLED: [(&str, u8); 31] = [
    ("zero", b'0'),
    ("one", b'1'),
    ("two", b'2'),
    ("three", b'3'),
    ("four", b'4'),
    ("five", b'5'),
    ("six", b'6'),
    ("seven", b'7'),
    ("eight", b'8'),
    ("nine", b'9'),
    ("零", b'0'),
    ("〇", b'0'),
    ("一", b'1'),
    ("壹", b'1'),
    ("幺", b'1'),
    ("二", b'2'),
    ("贰", b'2'),
    ("三", b'3'),
    ("叁", b'3'),
    ("四", b'4'),
    ("肆", b'4'),
    ("五", b'5'),
    ("伍", b'5'),
    ("六", b'6'),
    ("陆", b'6'),
    ("七", b'7'),
    ("柒", b'7'),
    ("八", b'8'),
    ("捌", b'8'),
    ("九", b'9'),
    ("玖", b'9'),
];

/// The digit a whole English word or one Chinese numeral stands for.
fn spelled_digit(spelling: &str) -> Option<u8> {
    SPELLED
        .iter()
        .find(|(text, _)| *text == spelling)
        .map(|&(_, digit)| digit)
}

fn is_gap(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | ',' | '‐' | '–' | '—')
}

/// One step of the scan: a digit (and whether it was spelled), a gap (and whether it is
/// whitespace), or anything else.
enum Unit {
    Digit { digit: u8, spelled: bool },
    Gap { space: bool },
    Other,
}

/// The unit starting at byte `at` and its length in bytes. An ASCII letter run is one unit: a
/// digit word only when it is the whole run (`one`, not `someone`).
fn unit_at(text: &str, at: usize) -> (Unit, usize) {
    let rest = &text[at..];
    let bytes = rest.as_bytes();
    if bytes[0].is_ascii_lowercase() {
        let len = bytes
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(bytes.len());
        let unit = match spelled_digit(&rest[..len]) {
            Some(digit) => Unit::Digit {
                digit,
                spelled: true,
            },
            None => Unit::Other,
        };
        return (unit, len);
    }
    let c = rest
        .chars()
        .next()
        .expect("at is a char boundary inside text");
    let unit = if c.is_ascii_digit() {
        Unit::Digit {
            digit: c as u8,
            spelled: false,
        }
    } else if let Some(digit) = spelled_digit(&rest[..c.len_utf8()]) {
        Unit::Digit {
            digit,
            spelled: true,
        }
    } else if is_gap(c) {
        Unit::Gap {
            space: c.is_whitespace(),
        }
    } else {
        Unit::Other
    };
    (unit, c.len_utf8())
}

/// A chain found by [`next_chain`]: its byte range and how many digits, and spelled digits, it
/// holds. The digits themselves are collected only for a chain that is read ([`push_digits`]).
struct Chain {
    start: usize,
    end: usize,
    digits: usize,
    spelled: usize,
}

/// The next maximal chain starting at or after byte `from` (readable or not).
fn next_chain(text: &str, from: usize) -> Option<Chain> {
    let mut at = from;
    let mut chain: Option<Chain> = None;
    // Gap characters since the chain's last digit; a whitespace run counts once, as it will
    // after whitespace folding (else a second pass could read what the first did not).
    let mut gap = 0;
    let mut after_space = false;
    while at < text.len() {
        let (unit, len) = unit_at(text, at);
        let space = matches!(unit, Unit::Gap { space: true });
        let repeated_space = space && after_space;
        after_space = space;
        match (unit, chain.as_mut()) {
            (Unit::Gap { .. }, Some(_)) if repeated_space => {}
            (Unit::Digit { spelled, .. }, Some(open)) => {
                open.digits += 1;
                open.spelled += usize::from(spelled);
                open.end = at + len;
                gap = 0;
            }
            (Unit::Digit { spelled, .. }, None) => {
                chain = Some(Chain {
                    start: at,
                    end: at + len,
                    digits: 1,
                    spelled: usize::from(spelled),
                });
            }
            (Unit::Gap { .. }, Some(_)) if gap < MAX_GAP_CHARS => gap += 1,
            (_, Some(_)) => return chain,
            (_, None) => {}
        }
        at += len;
    }
    chain
}

/// Appends the digits of the chain `text[chain.start..chain.end]` to `out`, gaps left out.
fn push_digits(text: &str, chain: &Chain, out: &mut String) {
    let mut at = chain.start;
    while at < chain.end {
        let (unit, len) = unit_at(text, at);
        if let Unit::Digit { digit, .. } = unit {
            out.push(char::from(digit));
        }
        at += len;
    }
}

/// Finds spelled digits with a SIMD prefilter; most text is skipped without being decoded.
static SPELLED_FINDER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(SPELLED.map(|(text, _)| text))
        .ok()
});

/// Whether some run of digits and gaps in `text` holds `enough` spelled digits: a cheap
/// necessary condition for a readable chain (gaps of any length pass here). Ordinary Chinese
/// text has numerals (`一个`, `三天`), but rarely three in one run, so the chain scan seldom runs.
fn spelled_digits_reach(text: &str, enough: usize) -> bool {
    let Some(finder) = SPELLED_FINDER.as_ref() else {
        return true;
    };
    let bytes = text.as_bytes();
    let is_letter_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphabetic);
    let mut in_run = 0;
    let mut last_end: Option<usize> = None;
    for found in finder.find_iter(text) {
        let (start, end) = (found.start(), found.end());
        // A digit word counts only standing alone (`one`, not `someone`).
        if bytes[start].is_ascii() && (start > 0 && is_letter_at(start - 1) || is_letter_at(end)) {
            continue;
        }
        let joined = last_end.is_some_and(|last| {
            text[last..start]
                .chars()
                .all(|c| c.is_ascii_digit() || is_gap(c))
        });
        in_run = if joined { in_run + 1 } else { 1 };
        last_end = Some(end);
        if in_run >= enough {
            return true;
        }
    }
    false
}

/// Reads spelled phone numbers back as digits; see the module docs.
pub(super) fn read_spelled_digits(text: String, tally: &mut Tally) -> String {
    if !spelled_digits_reach(&text, MIN_SPELLED_DIGITS) {
        return text;
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    let mut spelled = 0u32;
    while let Some(chain) = next_chain(&text, from) {
        from = chain.end;
        if chain.digits < MIN_CHAIN_DIGITS || chain.spelled < MIN_SPELLED_DIGITS {
            continue;
        }
        out.push_str(&text[copied..chain.start]);
        push_digits(&text, &chain, &mut out);
        copied = chain.end;
        spelled += chain.spelled as u32;
    }
    if spelled == 0 {
        return text;
    }
    out.push_str(&text[copied..]);
    tally.add(Transform::Leetspeak, spelled);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> String {
        read_spelled_digits(text.to_owned(), &mut Tally::default())
    }

    #[test]
    fn spelled_phone_numbers_become_digits_and_counting_words_stay() {
        let rows = [
            (
                "call zero eight zero zero, one one two, three four five six now",
                "call 08001123456 now",
            ),
            ("电话：壹叁捌-贰伍柒陆-零玖肆叁", "电话：13825760943"),
            ("微同号 1五8二二零六七七九八", "微同号 15822067798"),
            ("热线 幺三八 零零七一 二三四五", "热线 13800712345"),
            (
                "群号是 六七八 九零一 二三四，大家",
                "群号是 678901234，大家",
            ),
            // Counting, dates and short codes are not phone numbers.
            ("五六七八九月都很忙", "五六七八九月都很忙"),
            ("二〇二四年十二月", "二〇二四年十二月"),
            ("七七四十九天", "七七四十九天"),
            ("one two three four five six", "one two three four five six"),
            (
                "someone won one, two, three prizes",
                "someone won one, two, three prizes",
            ),
            // Plain numbers are stage 9's; too few spelled digits leave the chain alone.
            ("call 0800 112 3456", "call 0800 112 3456"),
            ("ref 1234567 one", "ref 1234567 one"),
            // Gaps longer than three characters end a chain; a whitespace run counts as one.
            (
                "one two three , - four five six seven",
                "one two three , - four five six seven",
            ),
            ("one two three    four five six seven", "1234567"),
        ];
        for (input, expected) in rows {
            assert_eq!(read(input), expected, "{input}");
        }
    }

    #[test]
    fn each_spelled_digit_read_counts_once() {
        let mut tally = Tally::default();
        let out = read_spelled_digits(
            "壹叁玖 零零 捌捌 贰伍柒陆 or 98 seven six five four three".to_owned(),
            &mut tally,
        );
        assert_eq!(out, "13900882576 or 9876543");
        assert_eq!(tally.get(Transform::Leetspeak), 11 + 5);
    }
}
