//! Integration tests of the edge engine: the shipped model, the runtime loader and the CLI.

mod cli;
mod cli_store;
mod engine;
mod fixtures;
mod knowledge;
mod long_messages;
mod model;
mod private_store;
mod retention;
mod runtime;
mod store;
mod unusable_store;
