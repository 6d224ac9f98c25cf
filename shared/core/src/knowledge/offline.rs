//! The phone's offline rule beside its model (the knowledge base, then a disguise), in one place
//! so that the edge engine applies it and the trainer measures it alike.

use std::sync::LazyLock;

use super::{Entry, KnowledgeBase, OPT_OUT, SIGNAL_MIN_SCORE};
use crate::taxonomy::Label;
use crate::variant::{VariantMeasure, DISGUISE_MIN_SCORE};
use crate::Normalized;

/// The least spam score at which an advertisement marker (an opt-out footer, a housing ad's
/// floor areas and sales line) makes an allowed message a promotion: the model has to lean spam
/// on its own, so a business's ordinary notice with an unsubscribe line (mudou's dev ham has a
/// few) stays allowed.
pub const PROMOTION_MIN_SCORE: f32 = 0.5;

/// The least spam score at which a disguise (a hidden-word score of at least
/// [`DISGUISE_MIN_SCORE`]) tags a message the model allows. Higher than the cloud's 0.5 because
/// the phone has no fusion to lean on: at 0.5 it tagged a blind dev look-alike written with a
/// space between every character (model 0.56); at 0.7 it tags none of the 3,622 corpus dev ham
/// and none of the 105 blind dev look-alikes, and 3 of the 80 blind dev obfuscated spam that
/// nothing else tagged (README, "A disguise tags offline too").
pub const DISGUISE_MIN_LEAN: f32 = 0.7;

/// Why the knowledge tags a message the model allows, and with which label.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineTag {
    pub label: Label,
    /// For the verdict's reason, e.g. `fraud knowledge: gambling (zh-gambling)`.
    pub why: String,
}

/// The tag the knowledge gives a message the model allows at spam `score`, given the entries
/// that fired on it: a fraud or illegal-content type tags it with that class; else a junk type
/// (a chain letter, bought followers, premium-rate charges) tags it `spam`; else, when the model
/// leans spam, an advertisement marker (an entry labelled `ad`: an opt-out footer, a housing ad)
/// tags it `ad` (users file promotions apart, as the cloud's category policy does), and failing
/// that a fraud signal tags it `spam`. `None`: it stays allowed. Never more than a tag: the
/// entries have no calibrated score, and a tag is delivered, so a false alarm costs only a label.
pub fn offline_tag(hits: &[&Entry], score: f32) -> Option<OfflineTag> {
    let tag = |label, why| Some(OfflineTag { label, why });
    if let Some(entry) = hits.iter().find(|e| e.is_harmful()) {
        let label = entry.label.unwrap_or(Label::Fraud);
        return tag(
            label,
            format!("fraud knowledge: {} ({})", entry.kind, entry.id),
        );
    }
    if let Some(entry) = hits.iter().find(|e| e.is_junk()) {
        return tag(
            Label::Spam,
            format!("junk knowledge: {} ({})", entry.kind, entry.id),
        );
    }
    let advertisement = hits.iter().find(|e| e.label == Some(Label::Ad));
    if let Some(entry) = advertisement.filter(|_| score >= PROMOTION_MIN_SCORE) {
        let marker = match entry.kind.as_str() {
            OPT_OUT => "opt-out footer",
            kind => kind,
        };
        let why = format!(
            "promotion: {marker} ({}) and spam score {score:.4} >= {PROMOTION_MIN_SCORE}",
            entry.id
        );
        return tag(Label::Ad, why);
    }
    let signal = hits.iter().find(|e| e.is_signal());
    let entry = signal.filter(|_| score >= SIGNAL_MIN_SCORE)?;
    let why = format!(
        "fraud signal: {} ({}) and spam score {score:.4} >= {SIGNAL_MIN_SCORE}",
        entry.kind, entry.id
    );
    tag(Label::Spam, why)
}

/// The phone's whole offline rule for a message its model allows at spam `score`: the knowledge
/// base's tag ([`offline_tag`]) and, failing that, a disguise: the message hides its words (the
/// variant measure's hidden-word score, [`VariantMeasure::hidden_words`], at least
/// [`DISGUISE_MIN_SCORE`]) and the model leans spam at [`DISGUISE_MIN_LEAN`] or more. As the
/// cloud's category policy does after fusion. Tags only.
pub fn offline_rule(
    knowledge: &KnowledgeBase,
    normalized: &Normalized,
    score: f32,
) -> Option<OfflineTag> {
    offline_tag(&knowledge.hits(normalized), score).or_else(|| disguise_tag(normalized, score))
}

/// The variant measure with its default weights, built once (its weights are a `Vec`).
static MEASURE: LazyLock<VariantMeasure> = LazyLock::new(VariantMeasure::default);

fn disguise_tag(normalized: &Normalized, score: f32) -> Option<OfflineTag> {
    if score < DISGUISE_MIN_LEAN {
        return None;
    }
    let measure = &*MEASURE;
    let evidence = measure.evidence(normalized);
    let hidden = measure.hidden_words(&evidence);
    (hidden >= DISGUISE_MIN_SCORE).then(|| OfflineTag {
        label: Label::Spam,
        why: format!(
            "disguise: hidden-word score {hidden:.4} >= {DISGUISE_MIN_SCORE} ({}) and spam score {score:.4} >= {DISGUISE_MIN_LEAN}",
            evidence.describe()
        ),
    })
}
