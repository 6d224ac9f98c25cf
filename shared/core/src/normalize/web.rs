//! Stage 7: URL and e-mail masking.

use super::*;

pub(super) const URL_PATH: &str = r"[a-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*";
pub(super) const STRONG_TLDS: &str = "com|net|org|info|biz|ly|io|cn|ng|uk|ru|tk|xyz|top|vip|cc|tv|gl|gd|link|site|online|club|shop|app|ke|za|gov|edu|mobi|ws|store|live|icu|pw|ml|ga|cf|gq|bit|page|click|work|cloud|co\\.in|co\\.uk|co\\.za|co\\.id|co\\.ke|com\\.[a-z]{2}";
pub(super) const WEAK_TLDS: &str =
    "co|in|it|me|my|us|id|de|es|fr|tr|br|mx|au|ca|jp|kr|hk|tw|sg|ph|pk|bd|to|be|nl|pl|se|ch|at|ly";

pub(super) static WEB_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let label = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?";
    let email = r"[a-z0-9][a-z0-9._%+\-]*@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}";
    // Whitespace inside broken URLs is matched as `\s*`, never a fixed number of spaces, so the
    // result does not depend on whether whitespace folding has run (idempotence).
    let scheme = format!(
        r"(?:https?|hxxps?)\s*:?\s*//\s*[a-z0-9][a-z0-9\-]*(?:\s*\.\s*[a-z0-9\-]+)*(?::[0-9]+)?(?:[/?#]{URL_PATH})?"
    );
    let glued = r"(?-u:\b)(?:https?(?:www)?|www)[a-z0-9]{2,}?(?:com|net|org|ly|in)[a-z0-9]*(?:/[a-z0-9\-._~/?=&%]*)?";
    let www = format!(r"(?-u:\b)www\s*\.\s*{label}(?:\.{label})+(?:[/?#:]{URL_PATH})?");
    let bare_strong =
        format!(r"(?-u:\b){label}(?:\.{label})*\.(?:{STRONG_TLDS})(?-u:\b)(?:[/?#:]{URL_PATH})?");
    let bare_weak = format!(r"(?-u:\b){label}(?:\.{label})*\.(?:{WEAK_TLDS})/{URL_PATH}");
    let pattern = format!("{email}|{scheme}|{www}|{glued}|{bare_strong}|{bare_weak}");
    Regex::new(&pattern).ok()
});

pub(super) fn mask_web(text: String, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    if !may_hold_web_address(&text) {
        return text;
    }
    let Some(re) = WEB_RE.as_ref() else {
        return text;
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in re.find_iter(&text) {
        let span = found.as_str();
        out.push_str(&text[last..found.start()]);
        last = found.end();
        if let Some((_, domain)) = span.split_once('@').filter(|_| !span.contains("//")) {
            out.push_str(placeholder::EMAIL);
            tally.add(Transform::EmailMasked, 1);
            masked.push(Masked {
                kind: MaskKind::Email,
                value: domain.to_owned(),
            });
        } else {
            out.push_str(placeholder::URL);
            tally.add(Transform::UrlMasked, 1);
            masked.push(Masked {
                kind: MaskKind::Url,
                value: url_host(span),
            });
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A cheap necessary condition for a `WEB_RE` match, which most messages fail ("ok... see u"):
/// every alternative holds `@` (e-mail), `//` (scheme), `http`/`www` (glued, www) or a dot
/// followed by an ASCII letter (the TLD of a bare domain).
pub(super) fn may_hold_web_address(text: &str) -> bool {
    any_byte_triple(text.as_bytes(), |b0, b1, b2| {
        (b0 == b'@')
            | (b0 == b'/' && b1 == b'/')
            | (b0 == b'h' && b1 == b't' && b2 == b't')
            | (b0 == b'w' && b1 == b'w' && b2 == b'w')
            | (b0 == b'.' && b1.is_ascii_alphabetic())
    })
}

/// Lower-case host of a matched URL span (spaces from broken URLs removed).
pub(super) fn url_host(span: &str) -> String {
    let after_scheme = span
        .split_once("//")
        .map_or(span, |(_, rest)| rest)
        .trim_start();
    if !span.contains("//") && !span.contains('.') {
        return glued_host(span);
    }
    after_scheme
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// Host of a glued URL such as `httptinyurlcomabc` -> `tinyurl.com`.
pub(super) fn glued_host(span: &str) -> String {
    let body = span
        .strip_prefix("https")
        .or_else(|| span.strip_prefix("http"))
        .unwrap_or(span);
    let www = body.starts_with("www");
    let body = body.strip_prefix("www").unwrap_or(body);
    let tld_at = ["com", "net", "org", "ly", "in"]
        .iter()
        .filter_map(|tld| {
            body.get(2..)
                .and_then(|b| b.find(tld))
                .map(|i| (i + 2, *tld))
        })
        .min();
    match tld_at {
        Some((i, tld)) => format!("{}{}.{}", if www { "www." } else { "" }, &body[..i], tld),
        None => body.to_owned(),
    }
}
