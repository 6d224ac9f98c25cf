//! `smsguard`: the edge engine on the command line (normalise, classify offline).

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "smsguard",
    version,
    about = "On-device SMS spam filter",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Normalise messages (one per line) and print one JSON object per line.
    Normalize(cli::normalize::NormalizeArgs),
    /// Classify messages offline with the local model.
    Classify(cli::classify::ClassifyArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Normalize(args) => cli::normalize::run(args),
        Command::Classify(args) => cli::classify::run(args),
    }
}
