//! Stage 6b: refanging, undoing the ways a link or a word is written so that filters miss it
//! while a reader still follows it:
//! * numeric HTML entities (`h&#111;t`, `example&#46;com`, `&#x41;`) become their character;
//! * a bracketed dot (`[.]`, `(.)`, `{.}`, `[dot]`, `(dot)`, `{dot}`, spaces around it allowed)
//!   between two letters or digits becomes `.`;
//! * a spelled-out dot before a top-level domain (`cheapcover dot io`, `bet dot co dot uk`)
//!   becomes `.`, unless the word before it is a function word (`the dot com bubble`);
//! * (pipeline version 4) a dot hidden from link patterns before a top-level domain: the Chinese
//!   word for dot or the ideographic full stop (`zhongjiang66 点 com`, `bet。vip`), or an ASCII
//!   dot with spaces on both sides (`royalbet . club`); and the same dots after `www`;
//! * a link written backwards (`moc.elpmaxe//:sptth`, "read it backwards") is turned round.
//!
//! It runs after case folding (so `(DOT)` is `(dot)`) and before web masking (so the refanged
//! link becomes `<url>`). Each pass shortens the text or turns a link round (a turned link holds
//! no `//:`, so it is never turned back), and passes repeat until nothing changes, so nested
//! disguises (`[[.].]`) come undone; [`MAX_PASSES`] bounds adversarial ones.
//! An entity is not decoded where its character could complete or start another entity (`&`,
//! `#`, or text ending in `&#` and digits before it), so decoding never creates new work and
//! the stage is a fixed point. A decoded character can be one an earlier stage folds (full-width,
//! upper case, invisible): the pipeline runs again when this stage fired.

use super::*;

/// Passes of one run; each strictly shortens the text, so only nesting deeper than this (never
/// seen in a real message) is left partly disguised, and only such a message (nested deeper than
/// the passes of all the pipeline's reruns together) is not a fixed point of `normalize`.
const MAX_PASSES: usize = 16;

/// Top-level domains after which a spelled-out ` dot ` is read as a dot. Only those a link in a
/// message plausibly ends in, so that prose keeps its word.
const SPELLED_TLDS: &str =
    "com|net|org|info|biz|io|cn|uk|co|xyz|top|vip|shop|live|site|online|club|app|store|link|click";

/// Words that stand before a spelled-out `dot` in prose, never as the last label of a host.
const FUNCTION_WORDS: [&str; 20] = [
    "the", "a", "an", "at", "in", "on", "of", "to", "and", "or", "is", "my", "your", "this",
    "that", "its", "his", "her", "our", "their",
];

/// A bracketed dot and the whitespace around it; it is a dot only between two letters or digits.
static BRACKETED_DOT_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\s*(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\})\s*").ok());

/// A spelled-out dot and the top-level domain after it; the label before it is checked apart.
static SPELLED_DOT_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!(r"\s+dot\s+({SPELLED_TLDS})(?-u:\b)")).ok());

/// A hidden dot and the top-level domain after it: `点` or `。` (spaces around allowed) or ` . `.
/// A sentence's full stop has no space before it, so `ok. top up` keeps its words.
static HIDDEN_DOT_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?:\s*[点。]\s*|\s+\.\s+)({SPELLED_TLDS})(?-u:\b)"
    ))
    .ok()
});

/// `www` and a hidden or spelled-out dot after it, then the first character of the host.
static WWW_DOT_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)www(?:\s*[点。]\s*|\s+\.\s*|\s+dot\s+)([a-z0-9])").ok());

/// A link written backwards: URL characters (no `:`, so one run holds one link) ending in the
/// reversed scheme `//:sptth` or `//:ptth`.
static REVERSED_LINK_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[a-z0-9._~/?#=&%+-]+//:s?ptth(?-u:\b)").ok());

/// `//:`, the reversed `://` every backwards link holds.
static REVERSED_SCHEME_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"//:"));

/// ` dot`, searched for with one prebuilt finder (building one per message cost more than the
/// search).
static SPELLED_DOT_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b" dot"));

/// Whether the text holds anything the stage could change: `&#`, a bracket before `.` or `d`,
/// or ` dot` (SIMD byte searches: most messages have none of them).
fn may_be_defanged(text: &str) -> bool {
    let bytes = text.as_bytes();
    let next_is = |i: usize, wanted: &[u8]| bytes.get(i + 1).is_some_and(|b| wanted.contains(b));
    memchr::memchr3_iter(b'&', b'[', b'(', bytes).any(|i| match bytes[i] {
        b'&' => next_is(i, b"#"),
        _ => next_is(i, b".d"),
    }) || memchr::memchr_iter(b'{', bytes).any(|i| next_is(i, b".d"))
        || SPELLED_DOT_FINDER.find(bytes).is_some()
        || REVERSED_SCHEME_FINDER.find(bytes).is_some()
        || may_hide_a_dot(bytes)
}

/// `点`, `。` or a `.` after whitespace, with an ASCII letter or digit after it (whitespace
/// between allowed). One byte search for the three (`点` and `。` start with E7 and E3).
fn may_hide_a_dot(bytes: &[u8]) -> bool {
    memchr::memchr3_iter(b'.', 0xE7, 0xE3, bytes).any(|i| {
        let after = match bytes[i] {
            b'.' => (i > 0 && bytes[i - 1].is_ascii_whitespace()).then_some(i + 1),
            _ => [HAN_DOT, IDEOGRAPHIC_FULL_STOP]
                .iter()
                .any(|dot| bytes[i..].starts_with(dot))
                .then_some(i + 3),
        };
        after.is_some_and(|at| {
            bytes[at..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(u8::is_ascii_alphanumeric)
        })
    })
}

/// `点` and `。` in UTF-8.
const HAN_DOT: &[u8] = "点".as_bytes();
const IDEOGRAPHIC_FULL_STOP: &[u8] = "。".as_bytes();

pub(super) fn refang(text: String, tally: &mut Tally) -> String {
    if !may_be_defanged(&text) {
        return text;
    }
    let mut current = text;
    for _ in 0..MAX_PASSES {
        let (next, changes) = refang_once(&current);
        if changes == 0 {
            break;
        }
        tally.add(Transform::Refanged, changes);
        current = next;
    }
    current
}

/// One pass of the rewrites; returns the text and how many spans it rewrote.
fn refang_once(text: &str) -> (String, u32) {
    let (text, entities) = decode_entities(text);
    let (text, bracketed) = replace_dots(&text, BRACKETED_DOT_RE.as_ref(), |before, after| {
        is_label_char(before) && after.is_some_and(char::is_alphanumeric)
    });
    let (text, spelled) = replace_dots(&text, SPELLED_DOT_RE.as_ref(), |before, _| {
        ends_in_host_label(before)
    });
    let (text, hidden) = replace_dots(&text, HIDDEN_DOT_RE.as_ref(), |before, after| {
        ends_in_host_label(before)
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    });
    let (text, www) = join_www(&text);
    let (text, reversed) = turn_reversed_links(&text);
    (
        text,
        entities + bracketed + spelled + hidden + www + reversed,
    )
}

/// `www 点 host` -> `www.host`: the host's own dot is undone by the hidden-dot rule.
fn join_www(text: &str) -> (String, u32) {
    let Some(re) = WWW_DOT_RE.as_ref() else {
        return (text.to_owned(), 0);
    };
    let mut changes = 0u32;
    let out = re.replace_all(text, |caps: &regex::Captures| {
        changes += 1;
        format!("www.{}", &caps[1])
    });
    (out.into_owned(), changes)
}

/// Turns round each backwards link whose host, read forwards, has a dot.
fn turn_reversed_links(text: &str) -> (String, u32) {
    let Some(re) = REVERSED_LINK_RE.as_ref() else {
        return (text.to_owned(), 0);
    };
    if REVERSED_SCHEME_FINDER.find(text.as_bytes()).is_none() {
        return (text.to_owned(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut changes = 0u32;
    let mut last = 0;
    for found in re.find_iter(text) {
        let forwards: String = found.as_str().chars().rev().collect();
        let host = forwards
            .split_once("://")
            .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        if !host.contains('.') || host.starts_with('.') || host.ends_with('.') {
            continue;
        }
        out.push_str(&text[last..found.start()]);
        out.push_str(&forwards);
        last = found.end();
        changes += 1;
    }
    out.push_str(&text[last..]);
    (out, changes)
}

/// Whether `before` ends in an ASCII host label (letters, digits, `-`) that is no function word:
/// what stands before a disguised dot that is a dot (`shop dot xyz`, not `the dot com`).
fn ends_in_host_label(before: &str) -> bool {
    let label_start = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '-');
    let label = &before[label_start.len()..];
    !label.is_empty() && !FUNCTION_WORDS.contains(&label)
}

fn is_label_char(before: &str) -> bool {
    before
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

/// Replaces each match of `re` by `.` and its first group (if any) when `is_dot(text before the
/// match, the character after it)` says the match stands for a dot. The neighbours are read in
/// the input, not the output, so `a[.]b[.]c` comes undone in one pass.
fn replace_dots(
    text: &str,
    re: Option<&Regex>,
    is_dot: impl Fn(&str, Option<char>) -> bool,
) -> (String, u32) {
    let Some(re) = re else {
        return (text.to_owned(), 0);
    };
    let mut out = String::with_capacity(text.len());
    let mut changes = 0u32;
    let mut last = 0;
    for caps in re.captures_iter(text) {
        let Some(found) = caps.get(0) else { continue };
        if !is_dot(&text[..found.start()], text[found.end()..].chars().next()) {
            continue;
        }
        out.push_str(&text[last..found.start()]);
        out.push('.');
        out.push_str(caps.get(1).map_or("", |tld| tld.as_str()));
        last = found.end();
        changes += 1;
    }
    out.push_str(&text[last..]);
    (out, changes)
}

/// Decodes `&#NNN;` and `&#xHH;` where the result is a printable character that cannot form a
/// new entity with its neighbours.
fn decode_entities(text: &str) -> (String, u32) {
    if !text.contains("&#") {
        return (text.to_owned(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut changes = 0u32;
    let mut rest = text;
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match parse_entity(rest) {
            Some((c, len)) if decodable(c) && !ends_in_partial_entity(&out) => {
                out.push(c);
                changes += 1;
                rest = &rest[len..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    (out, changes)
}

/// The character of the entity at the start of `text` and the entity's length in bytes.
fn parse_entity(text: &str) -> Option<(char, usize)> {
    let body = text.strip_prefix("&#")?;
    let (digits, radix, prefix) = match body.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16, 3),
        None => (body, 10, 2),
    };
    let end = digits.find(';')?;
    let number = &digits[..end];
    if number.is_empty() || number.len() > 7 || !number.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let c = char::from_u32(u32::from_str_radix(number, radix).ok()?)?;
    Some((c, prefix + end + 1))
}

fn decodable(c: char) -> bool {
    !c.is_control() && c != '&' && c != '#'
}

/// Whether `out` ends in `&#`, `&#x` or `&#` and digits: a decoded digit or `;` would complete
/// an entity there.
fn ends_in_partial_entity(out: &str) -> bool {
    let trimmed = out.trim_end_matches(|c: char| c.is_ascii_hexdigit());
    let trimmed = trimmed.strip_suffix(['x', 'X']).unwrap_or(trimmed);
    trimmed.ends_with("&#")
}
