//! The core's one integration-test binary.

mod golden;
mod robustness;
