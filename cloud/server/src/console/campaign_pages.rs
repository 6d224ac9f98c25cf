//! The Campaigns and Reports pages (see [`super::campaigns`] for what they show). Ids, hashes,
//! classes and counts only: the similarity memory stores no message text, and the pages say so.

use std::fmt::Write;

use smsguard_scoring::similarity::Consensus;

use super::auth::Session;
use super::campaigns::{CampaignView, Cluster, Member, TRAIL};
use super::pages::{escape, layout, utc, Page};

/// Members named in a cell before "and N more".
const IDS_SHOWN: usize = 4;

const NO_TEXT: &str = "No message text is ever stored: the similarity memory keeps one-way \
    MinHash fingerprints, so campaigns are shown by fingerprint id, class and counts.";

fn time(at_ms: Option<i64>) -> String {
    at_ms.map_or_else(|| "—".to_owned(), |t| utc(t.max(0) as u64))
}

fn ids(cluster: &Cluster) -> String {
    let mut out: Vec<String> = cluster
        .members
        .iter()
        .take(IDS_SHOWN)
        .map(|m| format!("<code>{:016x}</code>", m.entry.id))
        .collect();
    if cluster.members.len() > IDS_SHOWN {
        out.push(format!("and {} more", cluster.members.len() - IDS_SHOWN));
    }
    out.join(" ")
}

fn consensus(members: &[Member]) -> &'static str {
    let any = |c| members.iter().any(|m| m.consensus == c);
    match (any(Consensus::NotSpam), any(Consensus::Spam)) {
        (true, true) => "split",
        (true, false) => "not spam (whitelisting)",
        (false, true) => "spam (quarantining)",
        (false, false) => "no quorum",
    }
}

fn listing(cluster: &Cluster) -> String {
    match cluster.listing() {
        Some(l) => l.as_str().to_owned(),
        None if cluster.members.iter().any(|m| m.listing.is_some()) => "partly".to_owned(),
        None => "—".to_owned(),
    }
}

/// The members' class, or "—" for a cluster with no spam evidence at all (only "not spam"
/// votes: its entries carry the memory's default class, which says nothing).
fn class(cluster: &Cluster) -> String {
    if cluster.seeded == 0 && cluster.spam_reports == 0 && cluster.trail_spam == 0 {
        "—".to_owned()
    } else {
        cluster.label().to_string()
    }
}

fn growth(cluster: &Cluster) -> String {
    let (now, before) = (cluster.last_hour, cluster.previous_hour);
    let trend = match now.cmp(&before) {
        std::cmp::Ordering::Greater => "growing",
        std::cmp::Ordering::Less => "slowing",
        std::cmp::Ordering::Equal => "steady",
    };
    format!("{now} / {before} ({trend})")
}

fn classes(cluster: &Cluster) -> String {
    let named: Vec<String> = cluster
        .classes
        .iter()
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    if named.is_empty() {
        "—".to_owned()
    } else {
        escape(&named.join(", "))
    }
}

fn intro(view: &CampaignView) -> String {
    format!(
        r#"<p class="note" id="no-text">{NO_TEXT}</p><p class="note">Clusters group the fingerprints of the newest {} reports (of at most {TRAIL}) and the operator's listings, chained at a Jaccard estimate of at least {:.2}. The similarity memory holds {} fingerprints in all; those seeded from corpora and the spam feed carry no time and no report, so they are counted here, not listed.</p>"#,
        view.trail_len, view.min_jaccard, view.memory_len
    )
}

pub fn campaigns(session: &Session, view: &CampaignView) -> String {
    let mut body = format!(
        r#"<h1>Campaigns</h1><section>{}<table id="campaigns"><tr><th>Fingerprints</th><th>Size</th><th>Class</th><th>Reported classes</th><th>Seeded</th><th>Spam / not-spam reporters</th><th>First report (UTC)</th><th>Last report (UTC)</th><th>Reports last hour / hour before</th><th>Consensus</th><th>Listed</th></tr>"#,
        intro(view)
    );
    for c in &view.clusters {
        let _ = write!(
            body,
            "<tr class=\"campaign\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ids(c),
            c.members.len(),
            class(c),
            classes(c),
            c.seeded,
            c.spam_reports,
            c.not_spam_reports,
            time(c.first_report_ms),
            time(c.last_report_ms),
            growth(c),
            consensus(&c.members),
            listing(c),
        );
    }
    if view.clusters.is_empty() {
        body.push_str(r#"<tr><td colspan="11">No reported fingerprints yet.</td></tr>"#);
    }
    body.push_str("</table></section>");
    layout(Page::Campaigns, session, &body)
}

/// A whitelist or blacklist button for every member of `cluster`.
fn action_form(session: &Session, cluster: &Cluster, action: &str) -> String {
    let ids: Vec<String> = cluster
        .ids()
        .iter()
        .map(|id| format!("{id:016x}"))
        .collect();
    format!(
        r#"<form method="post" action="/reports/list" class="inline"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="ids" value="{}"><input type="hidden" name="action" value="{action}"><button type="submit" class="{action}" data-first="{}">{}</button></form>"#,
        escape(&session.csrf),
        ids.join(" "),
        ids.first().map(String::as_str).unwrap_or_default(),
        match action {
            "whitelist" => "Whitelist",
            "blacklist" => "Blacklist",
            _ => "Unlist",
        }
    )
}

pub fn reports(session: &Session, view: &CampaignView, notice: Option<&str>) -> String {
    let mut body = String::from("<h1>Reports</h1>");
    if let Some(notice) = notice {
        let _ = write!(
            body,
            r#"<section><p id="list-notice">{}</p></section>"#,
            escape(notice)
        );
    }
    let _ = write!(
        body,
        r#"<section><h2>Votes by cluster</h2>{}<p class="note">Whitelist forces Allow, blacklist forces Block on near-duplicates of the cluster's fingerprints from the next verdict on (an operator's action, above any report quorum; a block rule of the rules file still wins), and enters the sync log for the phones. Unlist takes a listing back. Every action is audited.</p><table id="report-clusters"><tr><th>Fingerprints</th><th>Class</th><th>Spam votes</th><th>Not-spam votes</th><th>Not counted</th><th>Last vote (UTC)</th><th>Consensus</th><th>Listed</th><th>Action</th></tr>"#,
        intro(view)
    );
    for c in &view.clusters {
        let _ = write!(
            body,
            "<tr class=\"report-cluster\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {} {}</td></tr>",
            ids(c),
            class(c),
            c.trail_spam,
            c.trail_not_spam,
            c.trail_uncounted,
            time(c.last_report_ms),
            consensus(&c.members),
            listing(c),
            action_form(session, c, "whitelist"),
            action_form(session, c, "blacklist"),
            if c.members.iter().any(|m| m.listing.is_some()) {
                action_form(session, c, "unlist")
            } else {
                String::new()
            },
        );
    }
    body.push_str(r#"</table></section><section><h2>Newest votes</h2><table id="votes"><tr><th>When (UTC)</th><th>Fingerprint</th><th>Vote</th><th>Class</th><th>Counted</th><th>Reporter (hash)</th></tr>"#);
    for v in &view.votes {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{:016x}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{:08x}</code></td></tr>",
            time(Some(v.at_ms)),
            v.fingerprint_id,
            if v.spam { "spam" } else { "not spam" },
            v.class.map_or_else(|| "—".to_owned(), |c| c.to_string()),
            if v.counted { "yes" } else { "no (distrusted)" },
            v.reporter_hash >> 32,
        );
    }
    body.push_str("</table></section>");
    layout(Page::Reports, session, &body)
}
