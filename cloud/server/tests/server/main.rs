//! Integration tests of `smsguard-cloud`: real servers on loopback ports, real tonic clients.
//! One binary; servers are shared per module where tests do not disturb one another.

mod common;
mod connections;
mod errors;
mod eval_cli;
mod key_reload;
mod lifecycle;
mod long_messages;
mod malformed;
mod poisoning;
mod privacy;
mod private_mode;
mod private_params;
mod private_similarity;
mod private_similarity_redis;
mod redis_state;
mod reload;
mod restart;
mod rpc;
mod security;
mod stream_limits;
mod test_redis;
