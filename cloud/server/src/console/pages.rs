//! The console's HTML, rendered on the server. Every value that did not come from this file
//! goes through [`escape`]. No page carries message text, except the verdict of the "try a
//! message" request, which does not echo the text either.

use std::fmt::Write;

use smsguard_proto::v1;

use super::audit::AuditEntry;
use super::auth::Session;
use super::charts;
use super::rules::RulesView;
use super::stats::Snapshot;

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Campaigns,
    Reports,
    Try,
    Rules,
    Audit,
}

impl Page {
    const ALL: [Page; 6] = [
        Page::Overview,
        Page::Campaigns,
        Page::Reports,
        Page::Try,
        Page::Rules,
        Page::Audit,
    ];

    fn path(self) -> &'static str {
        match self {
            Page::Overview => "/overview",
            Page::Campaigns => "/campaigns",
            Page::Reports => "/reports",
            Page::Try => "/try",
            Page::Rules => "/rules",
            Page::Audit => "/audit",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Campaigns => "Campaigns",
            Page::Reports => "Reports",
            Page::Try => "Try a message",
            Page::Rules => "Rules",
            Page::Audit => "Audit",
        }
    }
}

/// HTML-escapes `text` for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, header: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} · smsguard console</title><link rel="stylesheet" href="/assets/console.css"></head><body>{header}<main>{body}</main></body></html>"#,
        escape(title)
    )
}

/// A page of a logged-in admin: navigation, the logout button (a CSRF-protected POST), body.
pub(super) fn layout(current: Page, session: &Session, body: &str) -> String {
    let mut nav = String::from("<header><strong>smsguard console</strong>");
    for page in Page::ALL {
        let class = if page == current {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            r#"<a href="{}"{class}>{}</a>"#,
            page.path(),
            page.title()
        );
    }
    let _ = write!(
        nav,
        r#"<form method="post" action="/logout"><input type="hidden" name="csrf" value="{}"><span>{}</span> <button type="submit">Log out</button></form></header>"#,
        escape(&session.csrf),
        escape(&session.user)
    );
    document(current.title(), &nav, body)
}

pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" id="login-error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<section><h1>Log in</h1>{error}<form method="post" action="/login"><input type="hidden" name="csrf" value="{}"><p><label>User <input name="user" id="user" autocomplete="username" required></label></p><p><label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label></p><button type="submit" id="login">Log in</button></form></section>"#,
        escape(csrf)
    );
    document(
        "Log in",
        "<header><strong>smsguard console</strong></header>",
        &body,
    )
}

/// What the overview shows besides the counters.
#[derive(Debug, Clone)]
pub struct OverviewFacts {
    pub snapshot: Snapshot,
    /// Verdicts per second, one value per sampling interval over the last hour.
    pub rates: Vec<super::stats::Series>,
    pub models: Vec<(String, String)>,
    pub similarity_entries: usize,
}

pub fn overview(session: &Session, facts: &OverviewFacts) -> String {
    let snapshot = &facts.snapshot;
    let total = snapshot.total_verdicts();
    let mut body = format!(
        r#"<h1>Overview</h1><section><h2>Verdicts</h2><p><span class="figure" id="total-verdicts">{total}</span> verdicts since start, <span id="degraded-share">{:.1}%</span> of them degraded (a scorer failed or the shared state did not answer).</p>"#,
        snapshot.degraded_share() * 100.0
    );
    let by_label_action: Vec<(String, u64)> = snapshot
        .verdicts
        .iter()
        .map(|((label, action), n)| (format!("{label} / {action}"), *n))
        .collect();
    body.push_str(&charts::bars(
        "verdicts by label and action",
        &by_label_action,
    ));
    body.push_str(r#"<h2>Verdicts per second by label, last hour</h2>"#);
    body.push_str(&charts::lines("verdicts per second", &facts.rates, "/s"));
    body.push_str("</section>");
    body.push_str(&latency_table(snapshot));
    body.push_str(&failures_table(snapshot));
    body.push_str(
        r#"<section><h2>Models</h2><table id="models"><tr><th>Model</th><th>Version</th></tr>"#,
    );
    for (model, version) in &facts.models {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(model),
            escape(version)
        );
    }
    let _ = write!(
        body,
        "</table><p class=\"note\">{} fingerprints in the similarity memory.</p></section>",
        facts.similarity_entries
    );
    layout(Page::Overview, session, &body)
}

fn latency_table(snapshot: &Snapshot) -> String {
    let mut html = String::from(
        r#"<section><h2>Request latency</h2><table id="latency"><tr><th>RPC</th><th>Requests</th><th>p50</th><th>p90</th><th>p99</th></tr>"#,
    );
    for (rpc, l) in &snapshot.latency {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(rpc),
            l.count,
            seconds(l.p50),
            seconds(l.p90),
            seconds(l.p99)
        );
    }
    html.push_str(
        "</table><p class=\"note\">Upper bounds of the latency histogram's buckets.</p></section>",
    );
    html
}

fn failures_table(snapshot: &Snapshot) -> String {
    let mut html = String::from(
        r#"<section><h2>Scorer failures</h2><table id="scorer-failures"><tr><th>Scorer</th><th>Failures</th></tr>"#,
    );
    for (model, n) in &snapshot.scorer_failures {
        let _ = write!(html, "<tr><td>{}</td><td>{n}</td></tr>", escape(model));
    }
    html.push_str("</table></section>");
    html
}

fn seconds(value: f64) -> String {
    if value.is_infinite() {
        "> 1.6 s".into()
    } else if value < 0.001 {
        format!("≤ {:.0} µs", value * 1e6)
    } else {
        format!("≤ {:.1} ms", value * 1e3)
    }
}

/// A proto enum's name without its prefix, lower case (`LABEL_SPAM` -> `spam`).
fn short_name(name: &str) -> String {
    name.split_once('_')
        .map_or(name, |(_, rest)| rest)
        .to_lowercase()
}

pub fn verdict_label(verdict: &v1::Verdict) -> String {
    short_name(
        v1::Label::try_from(verdict.label)
            .map(|l| l.as_str_name())
            .unwrap_or("LABEL_UNKNOWN"),
    )
}

pub fn verdict_action(verdict: &v1::Verdict) -> String {
    short_name(
        v1::Action::try_from(verdict.action)
            .map(|a| a.as_str_name())
            .unwrap_or("ACTION_UNKNOWN"),
    )
}

/// The "try a message" page: the form, and the verdict of the message just sent (never the
/// message itself).
pub fn try_message(
    session: &Session,
    verdict: Option<&v1::Verdict>,
    error: Option<&str>,
) -> String {
    let mut body = format!(
        r#"<h1>Try a message</h1><section><form method="post" action="/try"><input type="hidden" name="csrf" value="{}"><p><label>Sender <input name="sender" id="sender"></label></p><p><label>Message<br><textarea name="text" id="text" required></textarea></label></p><button type="submit" id="score">Score it</button></form><p class="note">The text is scored like a gRPC Classify call and counts in the overview; it is neither stored, logged nor shown again. The audit log records that a message was tried and its verdict.</p></section>"#,
        escape(&session.csrf)
    );
    if let Some(error) = error {
        let _ = write!(
            body,
            r#"<p class="error" id="try-error">{}</p>"#,
            escape(error)
        );
    }
    if let Some(verdict) = verdict {
        body.push_str(&verdict_section(verdict));
    }
    layout(Page::Try, session, &body)
}

fn verdict_section(verdict: &v1::Verdict) -> String {
    let action = verdict_action(verdict);
    let mut html = format!(
        r#"<section id="verdict"><h2>Fused verdict</h2><p class="figure verdict-{action}"><span id="verdict-label">{}</span> → <span id="verdict-action">{action}</span></p><p>Spam score <span id="spam-score">{:.3}</span>{}</p><table id="contributions"><tr><th>Scorer</th><th>Score</th><th>Weight</th><th>Reason</th><th>Degraded</th></tr>"#,
        verdict_label(verdict),
        verdict.spam_score,
        if verdict.degraded { " · degraded" } else { "" },
    );
    for c in &verdict.contributions {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.model),
            c.score,
            c.weight,
            escape(&c.reason),
            if c.degraded { "yes" } else { "" }
        );
    }
    html.push_str("</table></section>");
    html
}

/// The rules file on disk, its validation and its rules, and the reload button.
pub fn rules(
    session: &Session,
    view: &RulesView,
    hits: &std::collections::BTreeMap<String, u64>,
    notice: Option<&str>,
) -> String {
    let mut body = String::from("<h1>Rules</h1>");
    if let Some(notice) = notice {
        let _ = write!(
            body,
            r#"<section><p id="reload-notice">{}</p></section>"#,
            escape(notice)
        );
    }
    let status = match &view.validation {
        Ok(count) => format!(r#"<p id="rules-status">Valid: {count} rules.</p>"#),
        Err(error) => format!(
            r#"<p class="error" id="rules-error">Does not validate, so it is not loaded (the scorer keeps the last valid rules): {}</p>"#,
            escape(error)
        ),
    };
    let _ = write!(
        body,
        r#"<section><h2>Source</h2><p><code>{}</code></p>{status}<form method="post" action="/rules/reload"><input type="hidden" name="csrf" value="{}"><button type="submit" id="reload">Reload now</button></form><p class="note">The server also checks the file every reload_interval_seconds and on SIGHUP. Hits count the verdicts each rule fired in since this process started (also exported as smsguard_rule_hits_total).</p></section>"#,
        escape(&view.source),
        escape(&session.csrf)
    );
    body.push_str(
        r#"<section><h2>Rules in the file</h2><table id="rules"><tr><th>Kind</th><th>Id</th><th>Label</th><th>Effect</th><th>Hits</th></tr>"#,
    );
    for rule in &view.rules {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"hits\">{}</td></tr>",
            rule.kind,
            escape(&rule.id),
            escape(&rule.label),
            escape(&rule.effect),
            hits.get(&rule.id).copied().unwrap_or(0)
        );
    }
    body.push_str("</table></section>");
    layout(Page::Rules, session, &body)
}

pub fn audit(session: &Session, entries: &[AuditEntry]) -> String {
    let mut body = String::from(
        r#"<h1>Audit</h1><section><p class="note">Every console action, newest first (the last 200), as stored in the server's store.</p><table id="audit"><tr><th>When (UTC)</th><th>Who</th><th>Action</th><th>Detail</th><th>From</th></tr>"#,
    );
    for e in entries {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            utc(e.at_ms),
            escape(&e.who),
            escape(&e.action),
            escape(&e.detail),
            escape(&e.from)
        );
    }
    body.push_str("</table></section>");
    layout(Page::Audit, session, &body)
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time in milliseconds (civil-from-days, proleptic Gregorian).
pub(super) fn utc(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56");
    }

    #[test]
    fn enum_names_are_shortened() {
        assert_eq!(short_name("LABEL_SPAM"), "spam");
        assert_eq!(short_name("ACTION_QUARANTINE"), "quarantine");
    }
}
