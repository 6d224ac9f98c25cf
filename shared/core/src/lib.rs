//! The shared core of smsguard: one normalisation and feature pipeline, fingerprints, the label
//! taxonomy, used identically by the edge, the cloud and the trainer (evaluation metrics live in
//! `smsguard-eval`).
//!
//! Invariant: this crate does no I/O (no files, sockets, clocks or logging) and knows nothing of
//! ort, sled, tonic or JNI. Data tables it needs are compiled in with `include_str!`.

pub mod features;
pub mod fingerprint;
pub mod keywords;
pub mod knowledge;
pub mod lsh;
pub mod market;
pub mod model_meta;
pub mod ngrams;
pub mod normalize;
pub mod percentile;
pub mod sender;
pub mod taxonomy;
pub mod variant;
pub mod verdict;

pub use fingerprint::{Fingerprint, MinHasher};
pub use market::{ActionThresholds, Market};
pub use normalize::{normalize, MaskKind, Masked, Normalized, Transform};
pub use taxonomy::Label;
pub use verdict::{Action, VerdictSource};

/// Version of the normalisation + featurisation pipeline. Bumped whenever `normalize` or the
/// feature encoding changes output for any input; models record the version they were trained
/// with and the edge refuses a model whose version it cannot read ([`reads_pipeline`]).
/// Version 2 added refanging (`[.]`, `(dot)`, HTML entities; see [`normalize`]); version 3
/// links written backwards, Latin letters drawn as symbols (🅵🆁🅴🅴) and more homophone keywords
/// (威芯, 裙号); version 4 small capitals (`ʙᴇsᴛ`), upside-down and backwards text, underlined
/// letters and dots hidden before a top-level domain (`www 点 abc 点 com`, `bet . club`);
/// version 5 phone numbers spelled out in words or numerals (`nine four seven…`, `壹叁捌…`) or
/// drawn as keycaps (`4️⃣4️⃣`).
pub const PIPELINE_VERSION: u32 = 5;

/// Whether a model trained on text of pipeline `version` may score this pipeline's text.
/// Models of versions 1 to 4 may: version 2 only added refanging, which changed the normalised
/// text of 1 of the 85,954 lines of the corpora (a `smsrr dot com` became `<url>`), version 3
/// changed none, version 4 one (an ExAIS ham line's struck-through `u`), version 5 one (a mudou
/// spam line's number with `一` stuffed between its digits), and each only ever
/// turns a disguise into what an older model already reads (a `<url>`, the plain character,
/// the plain word, words in reading order).
pub fn reads_pipeline(version: u32) -> bool {
    (1..=PIPELINE_VERSION).contains(&version)
}

/// Placeholder tokens that masking writes into the normalised text. They are lower case
/// because masking runs after case folding, and the feature encoder maps each to one id.
pub mod placeholder {
    pub const URL: &str = "<url>";
    pub const EMAIL: &str = "<email>";
    pub const PHONE: &str = "<phone>";
    pub const NUM: &str = "<num>";
    /// All placeholders, in the order of their reserved feature ids (1..=4).
    pub const ALL: [&str; 4] = [URL, EMAIL, PHONE, NUM];
}
