//! `smsguard`: the edge engine on the command line: normalise, classify (offline or with the
//! cloud), and manage the store (quarantine, reports, sync, re-checks, model updates, stats).

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

use cli::engine_args::EngineArgs;

#[derive(Debug, Parser)]
#[command(
    name = "smsguard",
    version,
    about = "On-device SMS spam filter",
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Normalise messages (one per line) and print one JSON object per line.
    Normalize(cli::normalize::NormalizeArgs),
    /// Classify messages: a message argument, --file or stdin (one per line), or --tsv.
    Classify(cli::classify::ClassifyArgs),
    /// List, restore or delete quarantined messages.
    Quarantine(cli::manage::QuarantineArgs),
    /// Report a classified message as spam or not spam (sent to the cloud or queued).
    Report(cli::manage::ReportArgs),
    /// Pull hot spam fingerprints and sender rules from the cloud.
    Sync,
    /// Re-check queued messages and send queued reports to the cloud.
    Drain,
    /// Fetch a signed model update from the cloud (needs --pinned-key).
    UpdateModel,
    /// Always deliver messages from this sender.
    Allow { sender: String },
    /// Always block messages from this sender (into the quarantine).
    Deny { sender: String },
    /// Counters and state of the store, as JSON.
    Stats,
    /// Crash-test helper: classify a burst and print each id as it returns.
    #[command(hide = true)]
    CrashBurst(cli::burst::BurstArgs),
}

fn main() -> Result<()> {
    let Cli { engine, command } = Cli::parse();
    match command {
        Command::Normalize(args) => cli::normalize::run(args),
        Command::Classify(args) => cli::classify::run(args, &engine),
        Command::Quarantine(args) => cli::manage::quarantine(args, &engine),
        Command::Report(args) => cli::manage::report(args, &engine),
        Command::Sync => cli::manage::sync(&engine),
        Command::Drain => cli::manage::drain(&engine),
        Command::UpdateModel => cli::manage::update_model(&engine),
        Command::Allow { sender } => cli::manage::sender_list(&sender, true, &engine),
        Command::Deny { sender } => cli::manage::sender_list(&sender, false, &engine),
        Command::Stats => cli::manage::stats(&engine),
        Command::CrashBurst(args) => cli::burst::run(args, &engine),
    }
}
