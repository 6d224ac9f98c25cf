//! Tests of the operator console: a real server (gRPC and console listeners on loopback), real
//! HTTP requests, and a real headless Chromium driven over WebDriver.

mod browser;
mod campaigns;
mod cli;
mod common;
mod http;
mod rules;
