//! `smsguard-cloud`: the cloud service binary.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "The smsguard cloud service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score labelled TSV files with the fused cloud verdict (embedded models) and report.
    Eval(smsguard_server::eval::EvalArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Eval(args) => smsguard_server::eval::run(args),
    }
}
