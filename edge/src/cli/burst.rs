//! `smsguard crash-burst` (hidden): classifies a burst of generated messages and prints each
//! returned message id as soon as `classify` returns, so a test can kill the process mid-burst
//! and check that every printed id survived.

use std::io::{self, Write};

use anyhow::Result;
use smsguard_edge::engine::ModelSource;

use super::engine_args::EngineArgs;

#[derive(Debug, clap::Args)]
pub struct BurstArgs {
    /// Messages to classify.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
}

/// Alternates obvious spam (quarantined) and obvious ham (delivered); the index keeps every
/// message distinct so no two share a cache entry.
fn message(i: usize) -> String {
    if i % 2 == 1 {
        format!("Hi, are we still on for lunch tomorrow? Table {i} is booked for noon")
    } else {
        format!("Congratulations! You have WON a £{i} cash prize. Call 0906170{i:04} now to claim, T&C apply")
    }
}

pub fn run(args: BurstArgs, engine_args: &EngineArgs) -> Result<()> {
    let engine = engine_args.open(ModelSource::Embedded)?;
    let mut out = io::stdout().lock();
    for i in 0..args.count {
        let decision = engine.classify("+15550100", &message(i), i as i64);
        writeln!(out, "{} {}", decision.message_id, decision.state.as_str())?;
        out.flush()?;
    }
    engine.close()?;
    Ok(())
}
