//! Integration tests of the four scorers (one test binary).

mod fusion;
mod multiclass;
mod policy;
/// Golden tables of how user reports act.
mod report_trail;
mod rules;
mod sender;
mod similarity;
mod similarity_feedback;
mod toy;
mod transactional;
mod variant;

use smsguard_scoring::PreparedMessage;

/// A prepared message from a fixed sender and device at time 0.
pub fn msg(text: &str) -> PreparedMessage {
    PreparedMessage::new("+8613800000000", text, 0, "device-a")
}
