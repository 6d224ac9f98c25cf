//! How hard a message tries to hide: obfuscation evidence from normalisation, measured the same
//! way by the cloud's `variant` scorer (a fusion input) and by the phone's offline rule (a
//! disguise on a message its model leans spam on is tagged, [`crate::knowledge::offline_tag`]).
//!
//! Signals (each counted, then weighted):
//! * transforms that only obfuscation needs: invisible/control characters, confusable
//!   look-alikes, NFKC compatibility forms (math letters, circled letters), leetspeak, stuffed
//!   separators (`加.微.信`, `w e i x i n`), folded homophone keywords (`威信` -> `微信`);
//! * words of the original text that mix Latin with Cyrillic/Greek/Armenian letters.
//!
//! Transforms that legitimate text needs are ignored: full width (CJK input methods), Traditional
//! -> Simplified, case and whitespace folding, masking of URLs and numbers.
//!
//! The weighted count `m` is combined with its density `m / chars` (so one folded `vx` in a long
//! message weighs less than a message made of obfuscation): `score = 1 - exp(-(m * count_weight
//! + density * density_weight))`.

use crate::{Normalized, Transform};

/// Least hidden-word score ([`VariantMeasure::hidden_words`]) that counts as a disguise: more
/// than one trick in a long message (one leetspeak word in 80 characters scores about 0.2).
/// Legitimate text rarely hides its words (it may defang a link it passes on, which is why links
/// do not count here).
pub const DISGUISE_MIN_SCORE: f32 = 0.3;

/// Weights of the variant score.
#[derive(Debug, Clone)]
pub struct VariantConfig {
    /// Per-transform weight of one firing; transforms not listed weigh 0.
    pub transform_weights: Vec<(Transform, f32)>,
    /// Weight of one word mixing Latin with another alphabet.
    pub mixed_script_word_weight: f32,
    /// Multiplier of the absolute weighted count.
    pub count_weight: f32,
    /// Multiplier of the weighted count per character.
    pub density_weight: f32,
}

impl Default for VariantConfig {
    fn default() -> Self {
        VariantConfig {
            transform_weights: vec![
                (Transform::InvisibleRemoved, 0.6),
                (Transform::ControlRemoved, 0.3),
                (Transform::Confusable, 0.6),
                (Transform::Nfkc, 0.15),
                (Transform::Leetspeak, 0.5),
                (Transform::SeparatorCollapsed, 0.3),
                (Transform::KeywordFolded, 0.8),
                // A link or word written to slip past filters ([.], (dot), HTML entities).
                (Transform::Refanged, 0.8),
            ],
            mixed_script_word_weight: 0.8,
            count_weight: 0.35,
            density_weight: 6.0,
        }
    }
}

/// The evidence behind one variant score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantEvidence {
    /// `(transform, count)` of the weighted transforms that fired.
    pub transforms: Vec<(Transform, u32)>,
    pub mixed_script_words: u32,
    /// Weighted count `m`.
    pub weighted: f32,
    /// `m` per non-whitespace character of the original.
    pub density: f32,
    /// Non-whitespace characters of the original (at least 1).
    pub chars: usize,
}

impl VariantEvidence {
    /// The evidence in words, for a verdict's reason (`obfuscation: leetspeak x2 (density 0.10)`).
    pub fn describe(&self) -> String {
        if self.weighted == 0.0 {
            return "no obfuscation".to_owned();
        }
        let mut parts: Vec<String> = self
            .transforms
            .iter()
            .map(|(t, n)| format!("{} x{n}", t.as_str()))
            .collect();
        if self.mixed_script_words > 0 {
            parts.push(format!("mixed_script_words x{}", self.mixed_script_words));
        }
        format!(
            "obfuscation: {} (density {:.2})",
            parts.join(", "),
            self.density
        )
    }
}

/// The variant measure; stateless but for its weights.
#[derive(Debug, Clone, Default)]
pub struct VariantMeasure {
    config: VariantConfig,
}

impl VariantMeasure {
    pub fn new(config: VariantConfig) -> Self {
        VariantMeasure { config }
    }

    /// Collects the weighted obfuscation evidence of one normalised message.
    pub fn evidence(&self, normalized: &Normalized) -> VariantEvidence {
        let mut evidence = VariantEvidence::default();
        for (transform, weight) in &self.config.transform_weights {
            let count = normalized.count(*transform);
            if count > 0 && *weight > 0.0 {
                evidence.transforms.push((*transform, count));
                evidence.weighted += *weight * count as f32;
            }
        }
        evidence.mixed_script_words = mixed_script_words(&normalized.original);
        evidence.weighted +=
            self.config.mixed_script_word_weight * evidence.mixed_script_words as f32;
        evidence.chars = normalized
            .original
            .chars()
            .filter(|c| !c.is_whitespace())
            .count()
            .max(1);
        evidence.density = evidence.weighted / evidence.chars as f32;
        evidence
    }

    /// Spamminess 0..1 of the evidence.
    pub fn score_evidence(&self, evidence: &VariantEvidence) -> f32 {
        let x = evidence.weighted * self.config.count_weight
            + evidence.density * self.config.density_weight;
        1.0 - (-x).exp()
    }

    /// The same score without the defanged links (`[.]`, `hxxp`, `(dot)`): how hard the message
    /// hides its *words*. A defanged link is evidence for fusion (spam writes links that way to
    /// slip past filters), but alone it is no disguise: people who know about phishing defang
    /// the links they pass on ("I broke the link on purpose").
    pub fn hidden_words(&self, evidence: &VariantEvidence) -> f32 {
        let refanged: f32 = evidence
            .transforms
            .iter()
            .filter(|(transform, _)| *transform == Transform::Refanged)
            .map(|(transform, count)| self.weight_of(*transform) * *count as f32)
            .sum();
        let weighted = (evidence.weighted - refanged).max(0.0);
        self.score_evidence(&VariantEvidence {
            weighted,
            density: weighted / evidence.chars.max(1) as f32,
            ..VariantEvidence::default()
        })
    }

    fn weight_of(&self, transform: Transform) -> f32 {
        self.config
            .transform_weights
            .iter()
            .find(|(t, _)| *t == transform)
            .map_or(0.0, |(_, weight)| *weight)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    Latin,
    Other,
}

/// Alphabet of a letter that look-alike attacks mix with Latin; `None` for everything else
/// (digits, Han, punctuation), which may legitimately sit inside a Latin word.
fn alphabet(c: char) -> Option<Alphabet> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' => Some(Alphabet::Latin),
        '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}' | '\u{0530}'..='\u{058F}' => {
            Some(Alphabet::Other)
        }
        _ => None,
    }
}

/// Number of whitespace-separated words with both Latin and Cyrillic/Greek/Armenian letters.
pub fn mixed_script_words(text: &str) -> u32 {
    text.split_whitespace()
        .filter(|word| {
            let mut latin = false;
            let mut other = false;
            for a in word.chars().filter_map(alphabet) {
                latin |= a == Alphabet::Latin;
                other |= a == Alphabet::Other;
            }
            latin && other
        })
        .count() as u32
}
