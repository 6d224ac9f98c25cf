//! Calibration of a score to a probability, fitted by the trainer (`smsguard-train`'s
//! `calibration_fit`) on messages the scored model never trained on: Platt's sigmoid over a
//! margin or a log-odds. Monotone (its slope is kept positive), so it
//! never reorders messages, only says how sure a score is.

use crate::fusion::sigmoid;

/// Platt's sigmoid `p = sigmoid(a · margin + b)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Platt {
    pub a: f32,
    pub b: f32,
}

impl Platt {
    pub fn probability(self, margin: f32) -> f32 {
        sigmoid(self.a * margin + self.b)
    }
}
