//! The Campaigns and Reports pages and the whitelist / blacklist action (CSRF-protected,
//! audited). Reading the trail and the entries, and listing, are blocking state-backend calls:
//! they run on the blocking pool, never on the gRPC path.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;

use super::campaign_pages;
use super::campaigns::{self, CampaignView};
use super::handlers::{checked_post, form, html, now_ms, record, see_other, session_of, Shared};
use super::pages::escape;
use super::Peer;
use crate::operator_list::{self, Listing};
use crate::state::parse_fingerprint_id;

/// Fingerprints one action may list (a cluster's members, as the page sends them).
const MAX_IDS: usize = 64;

async fn view(console: &Shared) -> Result<CampaignView, String> {
    let app = Arc::clone(&console.app);
    tokio::task::spawn_blocking(move || campaigns::gather(&app, now_ms()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()))
}

fn unreadable(error: &str) -> Response {
    tracing::warn!(%error, "console: reports unreadable");
    let page = format!("<p>The reports cannot be read: {}</p>", escape(error));
    html(StatusCode::INTERNAL_SERVER_ERROR, page)
}

pub(super) async fn campaigns(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&console, &headers) else {
        return see_other("/login");
    };
    match view(&console).await {
        Ok(view) => html(StatusCode::OK, campaign_pages::campaigns(&session, &view)),
        Err(error) => unreadable(&error),
    }
}

pub(super) async fn reports(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&console, &headers) else {
        return see_other("/login");
    };
    match view(&console).await {
        Ok(view) => html(
            StatusCode::OK,
            campaign_pages::reports(&session, &view, None),
        ),
        Err(error) => unreadable(&error),
    }
}

/// Fingerprint ids: 16 hex digits each, separated by spaces or commas; 1 to [`MAX_IDS`].
fn parse_ids(text: &str) -> Result<Vec<u64>, String> {
    let ids: Vec<&str> = text.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(format!("send 1 to {MAX_IDS} fingerprint ids"));
    }
    ids.iter()
        .map(|id| {
            parse_fingerprint_id(id).map_err(|_| "a fingerprint id is 16 hex digits".to_owned())
        })
        .collect()
}

pub(super) async fn list(
    State(console): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let (_, session) = match checked_post(&console, &headers, &fields, peer, "list").await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let ids = match parse_ids(field("ids")) {
        Ok(ids) => ids,
        Err(error) => return html(StatusCode::BAD_REQUEST, escape(&error)),
    };
    let what = field("action").to_owned();
    let listing = match what.as_str() {
        "unlist" => None,
        other => match Listing::parse(other) {
            Some(listing) => Some(listing),
            None => return html(StatusCode::BAD_REQUEST, "<p>Unknown action.</p>".into()),
        },
    };
    let app = Arc::clone(&console.app);
    let who = session.user.clone();
    let listed_ids = ids.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let at = now_ms().max(0) as u64;
        listed_ids.iter().try_for_each(|&id| match listing {
            Some(listing) => operator_list::list(&app, id, listing, &who, at).map(|_| ()),
            None => operator_list::unlist(&app, id),
        })
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|done| done.map_err(|e| e.to_string()));
    let named: Vec<String> = ids.iter().map(|id| format!("{id:016x}")).collect();
    let notice = match &outcome {
        Ok(()) => format!(
            "{} {} fingerprint(s): {}. In force from the next verdict; logged for the phones.",
            match listing {
                Some(Listing::Whitelist) => "Whitelisted",
                Some(Listing::Blacklist) => "Blacklisted",
                None => "Unlisted",
            },
            ids.len(),
            named.join(" ")
        ),
        Err(error) => format!("Not all done: {error}"),
    };
    record(&console, &session.user, &what, &notice, peer).await;
    let status = if outcome.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    match view(&console).await {
        Ok(view) => html(
            status,
            campaign_pages::reports(&session, &view, Some(&notice)),
        ),
        Err(error) => unreadable(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_hex_digits_each() {
        assert_eq!(
            parse_ids("00000000000000ff,0000000000000001 ").unwrap(),
            [0xff, 1]
        );
        assert!(parse_ids("").is_err());
        assert!(parse_ids("ff").is_err());
        assert!(parse_ids("zz000000000000ff").is_err());
        let many = vec!["0000000000000001"; MAX_IDS + 1].join(" ");
        assert!(parse_ids(&many).is_err());
    }
}
