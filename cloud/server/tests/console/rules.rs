//! The Rules page: the file on disk, a validation error shown and not loaded, the reload button.

use smsguard_core::knowledge::BUILTIN_TOML;
use smsguard_scoring::rules::{DEFAULT_RULES_TOML, DEFAULT_SPAM_HOSTS};

use crate::common::*;

const PARCEL: &str =
    "URGENT: your parcel is held, pay the 1.99 fee at http://parcel-fee.example/q7x9z";

#[test]
fn an_invalid_rules_file_is_shown_with_its_error_and_not_loaded() {
    let own = start_console_server_with(|config, dir| {
        let rules = dir.join("rules.toml");
        std::fs::write(&rules, with_table_beside()).unwrap();
        std::fs::write(dir.join("spam-hosts.txt"), DEFAULT_SPAM_HOSTS).unwrap();
        std::fs::write(dir.join("knowledge.toml"), BUILTIN_TOML).unwrap();
        config.rules_path = Some(rules);
        // Only the button reloads here, so each notice is the button's doing.
        config.reload_interval_seconds = 3600;
    });
    let rules_path = own.server_rules_path();
    let session = login_to(own.console);
    let page = get_from(own.console, "/rules", Some(&session.cookie));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"id="rules-status">Valid: "#),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>en-parcel-fee</td>"));

    let broken = format!(
        "{}\n[[entry]]\nid = \"broken-rule\"\ntype = \"t\"\npattern = \"(\"\nweight = 0.5\nlabel = \"fraud\"\ndescription = \"d\"\nexamples = [\"x\"]\n",
        with_table_beside()
    );
    std::fs::write(&rules_path, broken).unwrap();
    let page = get_from(own.console, "/rules", Some(&session.cookie));
    let error = element_text(&page.body, "rules-error").expect("the error is shown");
    assert!(error.contains("broken-rule"), "{error}");

    let no_token = post_form_to(own.console, "/rules/reload", Some(&session.cookie), &[]);
    assert_eq!(no_token.status, 403);
    let reload = post_form_to(
        own.console,
        "/rules/reload",
        Some(&session.cookie),
        &[("csrf", &session.csrf)],
    );
    assert_eq!(reload.status, 200);
    let notice = element_text(&reload.body, "reload-notice").unwrap();
    assert_eq!(notice, "Not reloaded: the file does not validate.");

    // The old rules are still in force.
    let tried = post_form_to(
        own.console,
        "/try",
        Some(&session.cookie),
        &[("csrf", &session.csrf), ("text", PARCEL)],
    );
    assert!(
        tried.body.contains("rules matched: en-parcel-fee"),
        "{}",
        tried.body
    );
    let audit = get_from(own.console, "/audit", Some(&session.cookie));
    assert!(audit.body.contains("<td>rules_reload</td><td>Not reloaded"));

    // Fixed, and the parcel entry renamed in the knowledge table beside the file: the reload
    // takes both, and the next verdict names the new id.
    let renamed = BUILTIN_TOML.replace("id = \"en-parcel-fee\"", "id = \"en-parcel-fee-renamed\"");
    std::fs::write(&rules_path, with_table_beside()).unwrap();
    std::fs::write(rules_path.with_file_name("knowledge.toml"), renamed).unwrap();
    let reload = post_form_to(
        own.console,
        "/rules/reload",
        Some(&session.cookie),
        &[("csrf", &session.csrf)],
    );
    assert_eq!(
        element_text(&reload.body, "reload-notice").unwrap(),
        "Rules reloaded."
    );
    let tried = post_form_to(
        own.console,
        "/try",
        Some(&session.cookie),
        &[("csrf", &session.csrf), ("text", PARCEL)],
    );
    assert!(
        tried.body.contains("en-parcel-fee-renamed"),
        "{}",
        tried.body
    );
    run(own.server.shutdown()).unwrap();
}

/// The default rules, reading the knowledge table from a file beside them.
fn with_table_beside() -> String {
    let text = DEFAULT_RULES_TOML.replace("# knowledge = ", "knowledge = ");
    assert_ne!(text, DEFAULT_RULES_TOML);
    text
}

/// The hit count in the Rules page's row of rule `id`.
fn hits_of(page: &str, id: &str) -> u64 {
    let row = format!("<td>{id}</td>");
    let at = page.find(&row).unwrap_or_else(|| panic!("no row {id}"));
    let cell = r#"<td class="hits">"#;
    let start = at + page[at..].find(cell).unwrap() + cell.len();
    page[start..].split('<').next().unwrap().parse().unwrap()
}

#[test]
fn the_rules_page_counts_the_verdicts_each_rule_fired_in() {
    let own = start_console_server_with(|config, dir| {
        let rules = dir.join("rules.toml");
        std::fs::write(&rules, with_table_beside()).unwrap();
        std::fs::write(dir.join("spam-hosts.txt"), DEFAULT_SPAM_HOSTS).unwrap();
        std::fs::write(dir.join("knowledge.toml"), BUILTIN_TOML).unwrap();
        config.rules_path = Some(rules);
    });
    let session = login_to(own.console);
    let page = get_from(own.console, "/rules", Some(&session.cookie));
    assert_eq!(hits_of(&page.body, "en-parcel-fee"), 0);
    let addr = own.server.addr;
    let verdict = run(async move {
        let mut client =
            smsguard_proto::v1::sms_guard_client::SmsGuardClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        for _ in 0..2 {
            client
                .classify(smsguard_proto::v1::ClassifyRequest {
                    message: Some(message(PARCEL)),
                })
                .await
                .unwrap();
        }
        client
            .classify(smsguard_proto::v1::ClassifyRequest {
                message: Some(message("See you at the station at six")),
            })
            .await
            .unwrap()
            .into_inner()
    });
    assert!(verdict.verdict.is_some());
    let page = get_from(own.console, "/rules", Some(&session.cookie));
    assert_eq!(
        hits_of(&page.body, "en-parcel-fee"),
        2,
        "two parcel messages"
    );
}
