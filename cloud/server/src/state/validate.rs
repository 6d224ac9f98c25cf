//! Validation of a request's message: limits, the edge's own verdict, fingerprint ids, and the client's clock clamped to the server's.

use super::*;

impl AppState {
    pub fn validate(&self, msg: Option<&v1::SmsMessage>) -> Result<ValidMessage, RequestError> {
        let msg = msg.ok_or(RequestError::Missing { field: "message" })?;
        if msg.body.is_empty() {
            return Err(RequestError::Empty {
                field: "message.body",
            });
        }
        check_len("message.body", &msg.body, self.config.max_body_bytes)?;
        check_len("message.sender", &msg.sender, MAX_SENDER_BYTES)?;
        check_len("message.device_id", &msg.device_id, MAX_ID_BYTES)?;
        check_len(
            "message.client_message_id",
            &msg.client_message_id,
            MAX_ID_BYTES,
        )?;
        check_len(
            "message.edge_model_version",
            &msg.edge_model_version,
            MAX_ID_BYTES,
        )?;
        Ok(ValidMessage {
            sender: msg.sender.clone(),
            body: msg.body.clone(),
            received_at_ms: msg.received_at_ms,
            device_id: msg.device_id.clone(),
            client_message_id: msg.client_message_id.clone(),
            edge: edge_input(msg.local_verdict.as_ref())?,
            // Lenient on purpose: a phone newer than this server may name a market it does not
            // know, and the dominant script is then the right fallback, not a refusal.
            market: msg.market.parse().ok(),
        })
    }
}

pub(super) fn server_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The client's time clamped to within [`MAX_CLIENT_CLOCK_SKEW_MS`] of `now_ms`.
pub(super) fn trusted_time_ms(client_ms: i64, now_ms: i64) -> i64 {
    client_ms.clamp(
        now_ms.saturating_sub(MAX_CLIENT_CLOCK_SKEW_MS),
        now_ms.saturating_add(MAX_CLIENT_CLOCK_SKEW_MS),
    )
}

pub(super) fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), RequestError> {
    if value.len() > max {
        return Err(RequestError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

pub(super) fn edge_input(
    local: Option<&v1::LocalVerdict>,
) -> Result<Option<EdgeInput>, RequestError> {
    let Some(local) = local else {
        return Ok(None);
    };
    let label = v1::Label::try_from(local.label).map_err(|_| RequestError::InvalidEnum {
        field: "message.local_verdict.label",
        value: local.label,
    })?;
    v1::Action::try_from(local.action).map_err(|_| RequestError::InvalidEnum {
        field: "message.local_verdict.action",
        value: local.action,
    })?;
    v1::VerdictSource::try_from(local.source).map_err(|_| RequestError::InvalidEnum {
        field: "message.local_verdict.source",
        value: local.source,
    })?;
    let Some(label) = smsguard_proto::core_label(label) else {
        return Ok(None);
    };
    if !(local.spam_score.is_finite() && (0.0..=1.0).contains(&local.spam_score)) {
        return Err(RequestError::Invalid {
            field: "message.local_verdict.spam_score",
            reason: "must be within 0..=1".into(),
        });
    }
    Ok(Some(EdgeInput {
        spam_score: local.spam_score,
        label,
    }))
}

/// A fingerprint id as the protocol and the console carry it: exactly 16 hex digits.
pub(crate) fn parse_fingerprint_id(text: &str) -> Result<u64, RequestError> {
    if text.is_empty() {
        return Err(RequestError::Missing {
            field: "fingerprint",
        });
    }
    if text.len() != 16 {
        return Err(RequestError::Invalid {
            field: "fingerprint",
            reason: format!("{} characters; expected 16 hex digits", text.len()),
        });
    }
    u64::from_str_radix(text, 16).map_err(|_| RequestError::Invalid {
        field: "fingerprint",
        reason: "expected 16 hex digits".into(),
    })
}
