//! A knowledge table as it travels from the cloud to phones (`SyncCache`): its text and the id
//! that names it. The id is the table's `revision` plus a digest of the text, so an edit whose
//! author forgot to bump the revision still reaches every phone, and two phones with the same
//! id hold byte-identical tables.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::{KnowledgeBase, KnowledgeError, KnowledgeFile, BUILTIN_NAME, BUILTIN_TOML};

/// The most bytes of table text a phone accepts (the built-in table is about 43 KB).
pub const MAX_TABLE_BYTES: usize = 256 * 1024;

/// A table's text and its id (`revision+digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableText {
    id: String,
    text: String,
}

impl TableText {
    /// Names `text`; fails when it is too long or does not parse as a table.
    pub fn new(text: String, source_name: &str) -> Result<Self, KnowledgeError> {
        if text.len() > MAX_TABLE_BYTES {
            return Err(KnowledgeError {
                source_name: source_name.to_owned(),
                line: 0,
                entry: None,
                message: format!(
                    "{} bytes of table, more than the {MAX_TABLE_BYTES} a phone accepts",
                    text.len()
                ),
            });
        }
        let file = KnowledgeFile::parse(&text, source_name)?;
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        Ok(TableText {
            id: format!("{}+{}", file.revision(), &digest[..12]),
            text,
        })
    }

    /// The compiled-in table.
    pub fn builtin() -> &'static TableText {
        static TABLE: OnceLock<TableText> = OnceLock::new();
        TABLE.get_or_init(|| {
            TableText::new(BUILTIN_TOML.to_owned(), BUILTIN_NAME)
                .expect("the built-in knowledge table parses")
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Compiles the table and checks every entry against its examples and counter-examples, so
    /// a table that contradicts itself is refused before it replaces a working one.
    pub fn compile_checked(&self, source_name: &str) -> Result<KnowledgeBase, KnowledgeError> {
        let base = KnowledgeBase::parse(&self.text, source_name)?;
        base.check_examples()?;
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_names_revision_and_text() {
        let builtin = TableText::builtin();
        let revision = KnowledgeFile::parse(BUILTIN_TOML, BUILTIN_NAME)
            .unwrap()
            .revision()
            .to_owned();
        assert!(
            builtin.id().starts_with(&format!("{revision}+")),
            "{}",
            builtin.id()
        );
        // One more byte (a comment) gives another id under the same revision.
        let edited = TableText::new(format!("{BUILTIN_TOML}\n# edited\n"), "edited").unwrap();
        assert!(edited.id().starts_with(&format!("{revision}+")));
        assert_ne!(edited.id(), builtin.id());
        assert!(builtin.compile_checked(BUILTIN_NAME).is_ok());
    }

    #[test]
    fn refuses_oversized_malformed_and_self_contradicting_tables() {
        let huge = format!("{BUILTIN_TOML}\n#{}\n", "x".repeat(MAX_TABLE_BYTES));
        assert!(TableText::new(huge, "huge")
            .unwrap_err()
            .message
            .contains("phone accepts"));
        assert!(TableText::new("format = 1\nrevision = [".into(), "broken").is_err());
        let contradicting = r#"format = 1
revision = "t.1"
[[entry]]
id = "t-prize"
type = "prize"
label = "fraud"
weight = 0.5
cues = [["prize"]]
examples = ["you won a car"]
"#;
        let table = TableText::new(contradicting.into(), "t").unwrap();
        assert!(table.compile_checked("t").is_err());
    }
}
