//! The smsguard cloud service. For now: the in-process evaluation of the fused cloud verdict
//! (`smsguard-cloud eval`); the gRPC server comes later.

pub mod eval;
