//! The knowledge table the phone tags with offline. It starts as the built-in table; `sync`
//! brings the cloud's when its id differs, and the engine installs it only after checking it
//! completely (size, format, the id against the text, every entry against its examples and
//! counter-examples). An installed table is kept in the store, so a restart keeps it; a
//! stored table that no longer loads falls back to the built-in one and is counted. A table
//! that is refused leaves the one in force untouched.

use smsguard_core::knowledge::{KnowledgeBase, TableText};
use smsguard_proto::v1;

use super::{read, write, Engine, EngineError};

/// The name a synced table has in errors.
const SYNCED_NAME: &str = "knowledge table from SyncCache";

/// The table in force: its id and, once a table was synced, its compiled base (`None`: the
/// built-in table).
#[derive(Debug)]
pub(super) struct ActiveKnowledge {
    id: String,
    synced: Option<KnowledgeBase>,
}

impl Default for ActiveKnowledge {
    fn default() -> Self {
        ActiveKnowledge {
            id: TableText::builtin().id().to_owned(),
            synced: None,
        }
    }
}

impl ActiveKnowledge {
    /// Compiles the built-in table now when it is the one in force (it compiles on first use).
    pub(super) fn warm_up(&self) {
        if self.synced.is_none() {
            KnowledgeBase::builtin();
        }
    }

    /// Runs `f` on the base in force.
    fn with_base<R>(&self, f: impl FnOnce(&KnowledgeBase) -> R) -> R {
        match &self.synced {
            Some(base) => f(base),
            None => f(KnowledgeBase::builtin()),
        }
    }
}

impl Engine {
    /// The id (`revision+digest`) of the knowledge table in force.
    pub fn knowledge_revision(&self) -> String {
        read(&self.knowledge).id.clone()
    }

    /// Runs `f` on the knowledge base in force, under the read lock (no copy on the message
    /// path; a sync swaps the table between messages).
    pub(super) fn with_knowledge_base<R>(&self, f: impl FnOnce(&KnowledgeBase) -> R) -> R {
        read(&self.knowledge).with_base(f)
    }

    /// At open: the table kept in the store, when there is one and it still loads.
    pub(super) fn load_stored_knowledge(&self) {
        let Some(store) = &self.store else { return };
        let text = match store.knowledge_table() {
            Ok(Some(text)) => text,
            Ok(None) => return,
            Err(_) => return self.count_store_failure(),
        };
        match checked(text) {
            Ok(active) => *write(&self.knowledge) = active,
            Err(_) => self.bump_persisted("knowledge.stored_rejected"),
        }
    }

    /// Installs a table from `SyncCache` after checking it; persisted before it is used.
    pub(super) fn install_knowledge(&self, table: &v1::KnowledgeTable) -> Result<(), EngineError> {
        let active = checked(table.toml.clone())?;
        if active.id != table.revision {
            return Err(EngineError::KnowledgeRejected(format!(
                "the table's id is {}, the cloud named it {}",
                active.id, table.revision
            )));
        }
        if let Some(store) = &self.store {
            store.save_knowledge_table(&table.toml)?;
        }
        *write(&self.knowledge) = active;
        Ok(())
    }
}

/// Parses, names and compiles a table, checking every entry against its examples.
fn checked(text: String) -> Result<ActiveKnowledge, EngineError> {
    let reject =
        |e: smsguard_core::knowledge::KnowledgeError| EngineError::KnowledgeRejected(e.to_string());
    let table = TableText::new(text, SYNCED_NAME).map_err(reject)?;
    if table.id() == TableText::builtin().id() {
        return Ok(ActiveKnowledge::default());
    }
    let base = table.compile_checked(SYNCED_NAME).map_err(reject)?;
    Ok(ActiveKnowledge {
        id: table.id().to_owned(),
        synced: Some(base),
    })
}
