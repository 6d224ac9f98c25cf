//! Subcommands of the `smsguard` binary. Each reads messages but never echoes them in logs or
//! errors: line numbers, lengths and reasons only (the quarantine listing shows the user's own
//! held messages on purpose).

pub mod burst;
pub mod classify;
pub mod engine_args;
pub mod key_file;
pub mod lines;
pub mod manage;
pub mod normalize;
