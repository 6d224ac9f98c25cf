//! Private classification: the cloud scores a message it cannot read.
//!
//! The phone turns the normalised text into small integer n-gram features, packs them into the
//! coefficients of one polynomial and encrypts it under its own BFV secret key ([`client`]). The
//! cloud multiplies that ciphertext by one plaintext polynomial holding every class's integer
//! weights ([`server`]) and returns one ciphertext, modulus-switched down, whose coefficient
//! `(k + 1) * D - 1` is class `k`'s score. Only the phone can decrypt it, and the decrypted
//! scores are exactly the plaintext integer computation ([`PrivateModel::plain_scores`]).
//!
//! # Packing
//! With `D` feature buckets the features are `f(x) = sum_i f_i x^i` and class `k`'s weights are
//! placed reversed at offset `k * D`: `W(x) = sum_k sum_i w_k[i] x^(k*D + D-1-i)`. In the product,
//! coefficient `k*D + D-1` collects `f_i * w_k[j]` exactly when `i = j` (other blocks land more
//! than `D - 1` positions away), and nothing wraps around `x^N = -1` because `K * D <= N`. So one
//! plaintext-ciphertext product gives all K dot products and needs no rotation keys.
//!
//! The `fhe` crate (BFV, pure Rust) has not been independently audited.
//!
//! No I/O: callers read and write the bytes.

pub mod client;
mod error;
pub mod head;
pub mod model;
pub mod params;
pub mod round_trip;
pub mod server;
pub mod similarity;

pub use client::PrivateClient;
pub use error::PrivateError;
pub use head::{PrivateEvidence, PrivateHead};
pub use model::{PrivateModel, PrivateShape};
pub use server::PrivateScorer;
