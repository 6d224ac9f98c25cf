//! Subcommands of the `smsguard` binary. Each reads messages but never echoes them in logs or
//! errors: line numbers, lengths and reasons only.

pub mod classify;
pub mod lines;
pub mod normalize;
