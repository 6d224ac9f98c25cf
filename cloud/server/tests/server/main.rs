//! Integration tests of `smsguard-cloud`: real servers on loopback ports, real tonic clients.
//! One binary; servers are shared per module where tests do not disturb one another.

mod common;
mod errors;
mod eval_cli;
mod lifecycle;
mod poisoning;
mod privacy;
mod reload;
mod restart;
mod rpc;
mod security;
