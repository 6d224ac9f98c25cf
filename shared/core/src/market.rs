//! Market profiles: which operating point (spam-score thresholds) a message is judged at.
//!
//! One threshold picked on the ham of every corpus pooled serves no market well: Chinese ham
//! and English ham score differently, so each market gets thresholds picked on its own dev ham
//! (stored in the model under [`crate::model_meta::MARKET_THRESHOLDS`]). A phone uses its
//! configured market; without one, the message's dominant script decides ([`Market::of_text`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::normalize::is_han;
use crate::placeholder;

/// A market profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Market {
    /// Messages written mostly in Chinese characters.
    Zh,
    /// Every other message: English, and other Latin-script languages (Turkish, Indonesian)
    /// until they have enough dev ham of their own.
    En,
}

/// Han characters count this many times a Latin letter when the script is weighed: a Chinese
/// word is one or two characters, an English one about five letters, so a Chinese SMS quoting
/// a brand name or a URL word ("您的Apple ID验证码") still reads as Chinese.
const HAN_WEIGHT: usize = 3;

impl Market {
    pub const ALL: [Market; 2] = [Market::Zh, Market::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Market::Zh => "zh",
            Market::En => "en",
        }
    }

    /// The market of a message from its dominant script (pass the normalised text: its
    /// placeholders such as `<url>` are not counted as Latin letters).
    pub fn of_text(text: &str) -> Market {
        let mut rest = text;
        let (mut han, mut latin) = (0usize, 0usize);
        while let Some(c) = rest.chars().next() {
            if let Some(token) = placeholder::ALL.iter().find(|p| rest.starts_with(**p)) {
                rest = &rest[token.len()..];
                continue;
            }
            if is_han(c) {
                han += 1;
            } else if c.is_alphabetic() {
                latin += 1;
            }
            rest = &rest[c.len_utf8()..];
        }
        if han > 0 && han * HAN_WEIGHT >= latin {
            Market::Zh
        } else {
            Market::En
        }
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A market name that is not `zh` or `en`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown market {0:?} (expected \"zh\" or \"en\")")]
pub struct UnknownMarket(pub String);

impl FromStr for Market {
    type Err = UnknownMarket;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" => Ok(Market::Zh),
            "en" => Ok(Market::En),
            _ => Err(UnknownMarket(s.chars().take(16).collect())),
        }
    }
}

/// The two thresholds of one market: at or above `tag` a message is tagged (<= 0.5 % of that
/// market's dev ham reached it), at or above `quarantine` it is held (<= 0.1 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionThresholds {
    pub tag: f32,
    pub quarantine: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_script_picks_the_market() {
        let table = [
            ("加微信领取免费礼品", Market::Zh),
            ("【招商银行】您的验证码为<num>", Market::Zh),
            ("您的apple id验证码<num>", Market::Zh),
            ("free entry in 2 a wkly comp <url>", Market::En),
            ("tebrikler! kazandınız <url>", Market::En),
            ("<url> <num> <phone>", Market::En),
            ("", Market::En),
            ("hello 你", Market::En),
        ];
        for (text, expected) in table {
            assert_eq!(Market::of_text(text), expected, "{text}");
        }
    }

    #[test]
    fn names_round_trip() {
        for market in Market::ALL {
            assert_eq!(market.as_str().parse::<Market>(), Ok(market));
            assert_eq!(
                serde_json::to_string(&market).unwrap(),
                format!("\"{market}\"")
            );
        }
        assert_eq!(" ZH ".parse::<Market>(), Ok(Market::Zh));
        assert!("fr".parse::<Market>().is_err());
    }
}
