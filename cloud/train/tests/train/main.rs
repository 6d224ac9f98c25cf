//! The single integration-test binary of smsguard-train; each concern is one module.

mod baseline;
mod cloud;
// x86-64 only: it compares this CPU with an emulated AVX2-only x86-64 one.
#[cfg(target_arch = "x86_64")]
mod cpu_independence;
mod data;
mod encoder;
mod eval;
mod fixture;
mod fusion_head;
mod multiclass_fit;
mod parity;
mod requantize;
mod training;
mod variants;
