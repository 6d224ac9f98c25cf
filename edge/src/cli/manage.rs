//! Store management subcommands: quarantine, report, sync, drain, update-model, allow/deny,
//! stats. They print JSON (one object per line) or short text; never message text except the
//! quarantine listing, which is the user's own held messages.

use std::io::{self, Write};

use anyhow::{Context, Result};
use serde::Serialize;

use smsguard_edge::engine::Engine;

use super::engine_args::EngineArgs;

#[derive(Debug, clap::Subcommand)]
pub enum QuarantineCommand {
    /// List held messages (one JSON object per line with --json).
    List,
    /// Move a message back to the inbox; prints it.
    Restore { id: u64 },
    /// Delete a held message for good.
    Delete { id: u64 },
}

#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub command: QuarantineCommand,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Message id (as printed by classify).
    pub id: u64,
    /// The message is spam.
    #[arg(
        long,
        conflicts_with = "not_spam",
        required_unless_present = "not_spam"
    )]
    pub spam: bool,
    /// The message is not spam.
    #[arg(long)]
    pub not_spam: bool,
}

pub fn quarantine(args: QuarantineArgs, engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        let mut out = io::BufWriter::new(io::stdout().lock());
        match args.command {
            QuarantineCommand::List => {
                let held = engine.quarantine_list()?;
                for message in &held {
                    if args.json {
                        write_json(&mut out, message)?;
                    } else {
                        writeln!(
                            out,
                            "{} {} score={:.4} action={} source={} from={} | {}",
                            message.message_id,
                            message.label,
                            message.spam_score,
                            message.action.as_str(),
                            message.source.as_str(),
                            message.sender,
                            message.body.replace(['\n', '\r'], " ")
                        )?;
                    }
                }
                if !args.json {
                    writeln!(out, "{} messages in the quarantine", held.len())?;
                }
            }
            QuarantineCommand::Restore { id } => {
                let message = engine.quarantine_restore(id)?;
                if args.json {
                    write_json(&mut out, &message)?;
                } else {
                    writeln!(out, "restored {id}: {}", message.body)?;
                }
            }
            QuarantineCommand::Delete { id } => {
                engine.quarantine_delete(id)?;
                if args.json {
                    write_json(&mut out, &serde_json::json!({ "deleted": id }))?;
                } else {
                    writeln!(out, "deleted {id}")?;
                }
            }
        }
        out.flush()?;
        Ok(())
    })
}

pub fn report(args: ReportArgs, engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        let outcome = engine
            .report(args.id, args.spam && !args.not_spam)
            .with_context(|| format!("cannot report message {}", args.id))?;
        print_json(&outcome)
    })
}

pub fn sync(engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        print_json(&engine.sync().context("sync failed")?)
    })
}

pub fn drain(engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        print_json(&engine.drain_queue().context("re-check failed")?)?;
        for event in engine.drain_events() {
            print_json(&event)?;
        }
        Ok(())
    })
}

pub fn update_model(engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        print_json(&engine.update_model().context("model update failed")?)
    })
}

pub fn sender_list(sender: &str, allow: bool, engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        if allow {
            engine.allow_sender(sender)?;
        } else {
            engine.deny_sender(sender)?;
        }
        Ok(())
    })
}

pub fn stats(engine: &EngineArgs) -> Result<()> {
    with_store(engine, |engine| {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &engine.stats())?;
        writeln!(out)?;
        Ok(())
    })
}

/// Opens the store, runs `command` on it and, once it succeeded, closes the engine so that the
/// store is flushed before the process exits (on failure the engine is dropped unclosed).
fn with_store(args: &EngineArgs, command: impl FnOnce(&Engine) -> Result<()>) -> Result<()> {
    let engine = args.open_store()?;
    command(&engine)?;
    engine.close()?;
    Ok(())
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = io::stdout().lock();
    write_json(&mut out, value)
}

fn write_json<T: Serialize>(out: &mut impl Write, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
