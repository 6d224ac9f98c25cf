//! Tests of smsguard-eval: the evaluation loop over a real TSV file, and the report files.

#[cfg(feature = "report")]
mod report;
mod run;
