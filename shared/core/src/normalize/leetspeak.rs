//! Stage 10: leetspeak folding.

use super::*;

pub(super) fn is_leet_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'@' || b == b'$'
}

pub(super) fn leet_letter(b: u8) -> Option<u8> {
    match b {
        b'0' => Some(b'o'),
        b'1' => Some(b'i'),
        b'3' => Some(b'e'),
        b'4' => Some(b'a'),
        b'5' => Some(b's'),
        b'7' => Some(b't'),
        b'@' => Some(b'a'),
        b'$' => Some(b's'),
        _ => None,
    }
}

pub(super) fn fold_leetspeak(text: String, tally: &mut Tally) -> String {
    if !has_letter_next_to_leet(text.as_bytes()) || !has_leet_token(text.as_bytes()) {
        return text;
    }
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut folded = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_leet_token_char(bytes[i]) {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_leet_token_char(bytes[i]) {
            i += 1;
        }
        let token = &bytes[start..i];
        if is_leet_token(token) && !is_at_address(token) {
            folded += push_leet(token, &mut out);
        } else {
            out.extend_from_slice(token);
        }
    }
    if folded == 0 {
        return text;
    }
    tally.add(Transform::Leetspeak, folded);
    // Only ASCII bytes of ASCII tokens were replaced by ASCII bytes, so UTF-8 is preserved.
    String::from_utf8(out).unwrap_or(text)
}

/// A vectorised necessary condition for [`has_leet_token`]: a folding token holds letters and
/// leet characters only, both kinds, so one of each stand side by side somewhere.
pub(super) fn has_letter_next_to_leet(bytes: &[u8]) -> bool {
    // 0 1 3 4 5 7 as the digits 0..=7 but 2 and 6: fewer compares per lane.
    let is_leet = |b: u8| {
        ((b.wrapping_sub(b'0') < 8) & (b != b'2') & (b != b'6')) | (b == b'@') | (b == b'$')
    };
    any_byte_pair(bytes, |b0, b1| {
        (is_leet(b0) & b1.is_ascii_lowercase()) | (b0.is_ascii_lowercase() & is_leet(b1))
    })
}

/// Whether some token folds; checked first so that most messages (digits, no leetspeak) are
/// returned without building a copy. Only the tokens around leet characters are looked at: a
/// token without one never folds.
pub(super) fn has_leet_token(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| leet_letter(b).is_some()) {
        let at = from + offset;
        let start = bytes[..at]
            .iter()
            .rposition(|&b| !is_leet_token_char(b))
            .map_or(0, |p| p + 1);
        let end = bytes[at..]
            .iter()
            .position(|&b| !is_leet_token_char(b))
            .map_or(bytes.len(), |len| at + len);
        let token = &bytes[start..end];
        if is_leet_token(token) && !is_at_address(token) {
            return true;
        }
        from = end;
    }
    false
}

pub(super) fn is_leet_token(token: &[u8]) -> bool {
    let letters = token.iter().filter(|b| b.is_ascii_lowercase()).count();
    let leet = token.iter().filter(|b| !b.is_ascii_lowercase()).count();
    let first_ok = token
        .first()
        .is_some_and(|&b| b.is_ascii_lowercase() || b == b'$');
    let all_leet = token
        .iter()
        .all(|&b| b.is_ascii_lowercase() || leet_letter(b).is_some());
    if letters < 2 || leet == 0 || !first_ok || !all_leet {
        return false;
    }
    // Letters followed only by digits look like a model number (mp3, win10) unless the digits
    // repeat one letter (fr33).
    let trailing_start = token
        .iter()
        .rposition(u8::is_ascii_lowercase)
        .map_or(0, |p| p + 1);
    let inner_leet = token[..trailing_start]
        .iter()
        .any(|b| !b.is_ascii_lowercase());
    let trailing = &token[trailing_start..];
    inner_leet || (trailing.len() >= 2 && trailing.iter().all(|&b| b == trailing[0]))
}

/// `sharp@the`: an `@` with 3+ letters on both sides is the word "at", not an obfuscated `a`.
pub(super) fn is_at_address(token: &[u8]) -> bool {
    token.iter().position(|&b| b == b'@').is_some_and(|at| {
        let letters = |part: &[u8]| part.iter().filter(|b| b.is_ascii_lowercase()).count();
        letters(&token[..at]) >= 3 && letters(&token[at + 1..]) >= 3
    })
}

pub(super) fn push_leet(token: &[u8], out: &mut Vec<u8>) -> u32 {
    let mut folded = 0;
    for (i, &b) in token.iter().enumerate() {
        let Some(mut letter) = leet_letter(b) else {
            out.push(b);
            continue;
        };
        if b == b'1' {
            let near_l = |j: Option<usize>| {
                j.and_then(|j| token.get(j))
                    .is_some_and(|&n| n == b'l' || n == b'1')
            };
            if near_l(i.checked_sub(1)) || near_l(Some(i + 1)) {
                letter = b'l';
            }
        }
        out.push(letter);
        folded += 1;
    }
    folded
}
