//! The console's routes: login and logout, the pages, the stylesheet. Every POST needs the
//! session's CSRF token (the login form: the pre-session token of its cookie); every answer
//! carries the security headers of [`security_headers`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use smsguard_proto::v1;

use super::auth::{self, Session, LOGIN_COOKIE, SESSION_COOKIE};
use super::pages::{self, OverviewFacts};
use super::stats::Snapshot;
use super::{Console, Peer};

pub(super) type Shared = Arc<Console>;

const STYLESHEET: &str = include_str!("assets/console.css");
/// How long a login form stays usable.
const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(600);
/// Audit entries the audit page shows.
const AUDIT_PAGE_ENTRIES: usize = 200;

pub fn router(console: Shared) -> Router {
    // A form carries at most one message: the longest SMS, percent-encoded (3 bytes per byte
    // at worst), plus the other fields.
    let body_limit = console.app.config.max_body_bytes * 3 + 4096;
    Router::new()
        .route("/", get(|| async { see_other("/overview") }))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/overview", get(overview))
        .route("/try", get(try_form).post(try_submit))
        .route("/campaigns", get(super::list_handlers::campaigns))
        .route("/reports", get(super::list_handlers::reports))
        .route("/reports/list", post(super::list_handlers::list))
        .route("/rules", get(rules_page))
        .route("/rules/reload", post(rules_reload))
        .route("/audit", get(audit))
        .route("/assets/console.css", get(stylesheet))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Headers on every answer: scripts, frames, plugins and third-party anything are refused by
/// the browser (CSP), pages are not cached and not framed, content types are not sniffed.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub(super) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(super) fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| auth::cookie(h, name).map(str::to_owned))
}

/// The request's live session and its token.
pub(super) fn session_of(console: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let token = cookie_value(headers, SESSION_COOKIE)?;
    let session = console.sessions.find(&token)?;
    Some((token, session))
}

/// `application/x-www-form-urlencoded` fields (the last of a repeated name wins).
pub(super) fn form(body: &[u8]) -> HashMap<String, String> {
    let decode = |text: &[u8]| {
        let spaced: Vec<u8> = text
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode(parts.next().unwrap_or_default());
            let value = decode(parts.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

fn forbidden(message: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        format!(
            "<!doctype html><title>Forbidden</title><p>{}</p>",
            pages::escape(message)
        ),
    )
}

/// Writes an audit entry off the runtime (it flushes the store); a failure is logged and the
/// action goes on: the store's own errors are visible in the server log.
pub(super) async fn record(
    console: &Shared,
    who: &str,
    action: &str,
    detail: &str,
    from: SocketAddr,
) {
    let console = Arc::clone(console);
    let (who, action, detail) = (who.to_owned(), action.to_owned(), detail.to_owned());
    let written =
        tokio::task::spawn_blocking(move || console.audit.record(&who, &action, &detail, from))
            .await;
    match written {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "console audit entry not written"),
        Err(error) => tracing::warn!(%error, "console audit task failed"),
    }
}

async fn login_form(State(console): State<Shared>, headers: HeaderMap) -> Response {
    if session_of(&console, &headers).is_some() {
        return see_other("/overview");
    }
    let token = auth::random_token();
    let page = html(StatusCode::OK, pages::login(&token, None));
    with_cookie(
        page,
        auth::set_cookie(LOGIN_COOKIE, &token, LOGIN_FORM_LIFETIME),
    )
}

async fn login_submit(
    State(console): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let form_token = cookie_value(&headers, LOGIN_COOKIE).unwrap_or_default();
    // Refused logins before the password check are not audited one by one: anyone who can
    // reach the port could fill the store with them. The throttle's start is audited below.
    if form_token.is_empty() || !auth::same_secret(&form_token, field("csrf")) {
        return forbidden(
            "The login form's CSRF token is missing or wrong: reload the login page.",
        );
    }
    if console.sessions.throttled() {
        let page = pages::login(&form_token, Some("Too many failed logins: wait a minute."));
        return html(StatusCode::TOO_MANY_REQUESTS, page);
    }
    let (user, password) = (field("user").to_owned(), field("password").to_owned());
    let checker = Arc::clone(&console);
    // PBKDF2 takes a noticeable slice of a CPU: keep it off the async workers. The user name
    // and the password are both checked whatever the other's outcome (no timing hint).
    let accepted = tokio::task::spawn_blocking(move || {
        let user_ok = auth::same_secret(&user, &checker.admin_user);
        let password_ok = checker.password.verify(&password);
        user_ok && password_ok
    })
    .await
    .unwrap_or(false);
    if !accepted {
        record(&console, field("user"), "login_failed", "", peer).await;
        if console.sessions.record_failure() {
            let detail = format!(
                "{} failed logins: logins refused for the rest of the minute",
                auth::MAX_FAILURES_PER_WINDOW
            );
            record(&console, field("user"), "login_throttled", &detail, peer).await;
        }
        let page = pages::login(&form_token, Some("Wrong user or password."));
        return html(StatusCode::UNAUTHORIZED, page);
    }
    let (token, session) = console.sessions.open(&console.admin_user);
    record(&console, &session.user, "login", "", peer).await;
    let lifetime = console.sessions.lifetime();
    let response = with_cookie(
        see_other("/overview"),
        auth::set_cookie(SESSION_COOKIE, &token, lifetime),
    );
    with_cookie(response, auth::set_cookie(LOGIN_COOKIE, "", Duration::ZERO))
}

/// The session of a POST whose CSRF token matches, or the answer that refuses it.
pub(super) async fn checked_post(
    console: &Shared,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
    peer: SocketAddr,
    action: &str,
) -> Result<(String, Session), Response> {
    let Some((token, session)) = session_of(console, headers) else {
        return Err(forbidden("Not logged in."));
    };
    let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !auth::same_secret(sent, &session.csrf) {
        record(console, &session.user, "csrf_refused", action, peer).await;
        return Err(forbidden(
            "CSRF token missing or wrong: reload the page and try again.",
        ));
    }
    Ok((token, session))
}

async fn logout(
    State(console): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let (token, session) = match checked_post(&console, &headers, &fields, peer, "logout").await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    console.sessions.close(&token);
    record(&console, &session.user, "logout", "", peer).await;
    with_cookie(
        see_other("/login"),
        auth::set_cookie(SESSION_COOKIE, "", Duration::ZERO),
    )
}

async fn overview(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&console, &headers) else {
        return see_other("/login");
    };
    let app = &console.app;
    let facts = OverviewFacts {
        snapshot: Snapshot::read(&app.metrics),
        rates: console.history.rates(),
        models: vec![
            (
                "edge (GetModel package)".into(),
                app.package.version.clone(),
            ),
            ("cloud".into(), env!("CARGO_PKG_VERSION").into()),
        ],
        similarity_entries: app.similarity_len(),
    };
    html(StatusCode::OK, pages::overview(&session, &facts))
}

async fn try_form(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&console, &headers) else {
        return see_other("/login");
    };
    html(StatusCode::OK, pages::try_message(&session, None, None))
}

async fn try_submit(
    State(console): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let (_, session) = match checked_post(&console, &headers, &fields, peer, "try_message").await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let message = v1::SmsMessage {
        sender: fields.get("sender").cloned().unwrap_or_default(),
        body: fields.get("text").cloned().unwrap_or_default(),
        received_at_ms: now_ms(),
        device_id: "operator-console".into(),
        ..Default::default()
    };
    match score(&console, &message).await {
        Ok(verdict) => {
            let detail = format!(
                "verdict {}/{} score {:.3}",
                pages::verdict_label(&verdict),
                pages::verdict_action(&verdict),
                verdict.spam_score
            );
            record(&console, &session.user, "try_message", &detail, peer).await;
            html(
                StatusCode::OK,
                pages::try_message(&session, Some(&verdict), None),
            )
        }
        Err(error) => {
            // The error names the field and its size, never the text.
            let detail = format!("refused: {error}");
            record(&console, &session.user, "try_message", &detail, peer).await;
            let page = pages::try_message(&session, None, Some(&error.to_string()));
            html(StatusCode::BAD_REQUEST, page)
        }
    }
}

/// Scores like gRPC `Classify`: the same validation, in-flight limit and scoring call.
async fn score(
    console: &Shared,
    message: &v1::SmsMessage,
) -> Result<v1::Verdict, crate::RequestError> {
    let app = &console.app;
    let valid = app.validate(Some(message))?;
    let permit = app.admit()?;
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        app.score(&valid)
    })
    .await
    .map_err(|e| crate::RequestError::Internal(e.to_string()))
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn audit(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&console, &headers) else {
        return see_other("/login");
    };
    let reader = Arc::clone(&console);
    let entries = tokio::task::spawn_blocking(move || reader.audit.newest(AUDIT_PAGE_ENTRIES))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()));
    match entries {
        Ok(entries) => html(StatusCode::OK, pages::audit(&session, &entries)),
        Err(error) => {
            tracing::warn!(%error, "console audit log unreadable");
            let page = format!(
                "<p>The audit log cannot be read: {}</p>",
                pages::escape(&error)
            );
            html(StatusCode::INTERNAL_SERVER_ERROR, page)
        }
    }
}

async fn read_rules(console: &Shared) -> super::rules::RulesView {
    let path = console.app.config.rules_path.clone();
    let read = tokio::task::spawn_blocking(move || super::rules::read(path.as_deref())).await;
    read.unwrap_or_else(|e| super::rules::RulesView {
        source: String::new(),
        validation: Err(format!("reading the rules failed: {e}")),
        rules: Vec::new(),
    })
}

async fn rules_page(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&console, &headers) else {
        return see_other("/login");
    };
    let view = read_rules(&console).await;
    let hits = Snapshot::read(&console.app.metrics).rule_hits;
    html(StatusCode::OK, pages::rules(&session, &view, &hits, None))
}

/// What SIGHUP does for rules and the spam feed (not the API keys): reload what changed.
async fn rules_reload(
    State(console): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let (_, session) = match checked_post(&console, &headers, &fields, peer, "rules_reload").await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let app = Arc::clone(&console.app);
    let reloaded = tokio::task::spawn_blocking(move || app.reload())
        .await
        .map_err(|e| e.to_string())
        .and_then(|summary| summary.map_err(|e| e.to_string()));
    let view = read_rules(&console).await;
    let notice = match (&reloaded, &view.validation) {
        (Err(error), _) => format!("Reload failed: {error}"),
        (Ok(_), Err(_)) => "Not reloaded: the file does not validate.".to_owned(),
        (Ok(summary), Ok(_)) if summary.rules_reloaded => "Rules reloaded.".to_owned(),
        (Ok(_), Ok(_)) => "Nothing to reload: the rules in force are the file's.".to_owned(),
    };
    record(&console, &session.user, "rules_reload", &notice, peer).await;
    let hits = Snapshot::read(&console.app.metrics).rule_hits;
    html(
        StatusCode::OK,
        pages::rules(&session, &view, &hits, Some(&notice)),
    )
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let fields = form(b"text=hello+world%21+%E4%BD%A0&csrf=ab&empty=");
        assert_eq!(fields["text"], "hello world! 你");
        assert_eq!(fields["csrf"], "ab");
        assert_eq!(fields["empty"], "");
    }
}
