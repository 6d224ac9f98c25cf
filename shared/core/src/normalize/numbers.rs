//! Stage 9: phone and number masking.

use super::*;

// The spans are those of the regex (leftmost-first)
//     (?P<phone>\+?[0-9](?:(?:\s+|-)?[0-9]){6,})|[0-9](?:[.,]?[0-9]){3,}
// found by a hand scanner: each repetition of either pattern can go on in at most one way, so
// the greedy match needs no backtracking. Any whitespace run counts as one separator:
// whitespace folding runs later.

/// Byte range of the first phone or number span starting at or after `from`.
pub(super) fn next_number_span(text: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let is_start = |b: u8| (b == b'+') | (b.wrapping_sub(b'0') < 10);
    let mut p = from;
    loop {
        p += find_byte(&bytes[p..], is_start)?;
        if let Some(end) = phone_end(text, p).or_else(|| number_end(bytes, p)) {
            return Some((p, end));
        }
        // Neither pattern matches at the next digit of the same run either: its greedy match
        // would be one repetition shorter than the one that fell short here.
        let digit_run = bytes[p].is_ascii_digit();
        p += 1;
        while digit_run && bytes.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
    }
}

/// End of `\+?[0-9](?:(?:\s+|-)?[0-9]){6,}` matched at `start`.
pub(super) fn phone_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let first_digit = start + usize::from(bytes[start] == b'+');
    if !bytes.get(first_digit).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut end = first_digit + 1;
    let mut repetitions = 0;
    loop {
        let after_space = end + leading_whitespace_len(&text[end..]);
        let digit_at = if after_space > end {
            after_space
        } else {
            end + usize::from(bytes.get(end) == Some(&b'-'))
        };
        if !bytes.get(digit_at).is_some_and(u8::is_ascii_digit) {
            break;
        }
        end = digit_at + 1;
        repetitions += 1;
    }
    (repetitions >= 6).then_some(end)
}

/// End of `[0-9](?:[.,]?[0-9]){3,}` matched at `start`.
pub(super) fn number_end(bytes: &[u8], start: usize) -> Option<usize> {
    if !bytes[start].is_ascii_digit() {
        return None;
    }
    let mut end = start + 1;
    let mut repetitions = 0;
    loop {
        let digit_at = end + usize::from(matches!(bytes.get(end), Some(b'.' | b',')));
        if !bytes.get(digit_at).is_some_and(u8::is_ascii_digit) {
            break;
        }
        end = digit_at + 1;
        repetitions += 1;
    }
    (repetitions >= 3).then_some(end)
}

/// Whether masking the number span `text[start..end]`, which holds separators, can change what
/// separator collapsing does on another run: only a single digit at an edge of the span (`3` in
/// `13800138000 3`) could have linked, through separators, to a single unit outside it (the
/// other digit groups are longer units, which never link). Collapsing ran before masking, so
/// another run sees `<phone>` where it saw that digit (`13800138000\t3😀v*v`: the `3` took the
/// `v` into a chain that ended at the `*`; without it `v*v` collapses).
pub(super) fn may_link_across(text: &str, start: usize, end: usize) -> bool {
    let span = &text.as_bytes()[start..end];
    let digits = span.strip_prefix(b"+").unwrap_or(span);
    let single_first = digits.len() > 1 && !digits[1].is_ascii_digit();
    let single_last = span.len() > 1 && !span[span.len() - 2].is_ascii_digit();
    (single_first && single_unit_before(&text[..start]))
        || (single_last && single_unit_after(&text[end..]))
}

/// Whether `text` ends with separators after a unit of one character.
pub(super) fn single_unit_before(text: &str) -> bool {
    let rest = text.trim_end_matches(is_separator);
    rest.len() < text.len() && {
        let mut chars = rest.chars().rev();
        chars
            .next()
            .is_some_and(|c| is_han(c) || c.is_ascii_alphanumeric())
            && chars.next().is_none_or(is_separator)
    }
}

/// Whether `text` starts with separators before a unit of one character.
pub(super) fn single_unit_after(text: &str) -> bool {
    let rest = text.trim_start_matches(is_separator);
    rest.len() < text.len() && {
        let mut chars = rest.chars();
        chars
            .next()
            .is_some_and(|c| is_han(c) || c.is_ascii_alphanumeric())
            && chars.next().is_none_or(is_separator)
    }
}

pub(super) fn leading_whitespace_len(text: &str) -> usize {
    text.find(|c: char| !c.is_whitespace())
        .unwrap_or(text.len())
}

pub(super) fn mask_numbers(text: String, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    if count_bytes(text.as_bytes(), |b| b.wrapping_sub(b'0') < 10) < 4 {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    while let Some((start, end)) = next_number_span(&text, last) {
        let span = &text[start..end];
        out.push_str(&text[last..start]);
        last = end;
        // Sized up front: collecting a filter would regrow the string digit by digit.
        let mut digits = String::with_capacity(span.len());
        digits.extend(span.chars().filter(|c| c.is_ascii_digit() || *c == '+'));
        let digit_count = digits.bytes().filter(u8::is_ascii_digit).count();
        tally.merged_units |= digits.len() < span.len() && may_link_across(&text, start, end);
        let is_phone = digit_count >= 7 && !span.contains(['.', ',']);
        let (kind, transform, token) = if is_phone {
            (MaskKind::Phone, Transform::PhoneMasked, placeholder::PHONE)
        } else {
            (MaskKind::Number, Transform::NumberMasked, placeholder::NUM)
        };
        out.push_str(token);
        tally.add(transform, 1);
        masked.push(Masked {
            kind,
            value: digits,
        });
    }
    out.push_str(&text[last..]);
    out
}
