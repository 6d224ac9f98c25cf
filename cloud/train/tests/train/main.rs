//! The single integration-test binary of smsguard-train; each concern is one module.

mod baseline;
mod cloud;
mod data;
mod encoder;
mod eval;
mod fixture;
mod parity;
mod training;
