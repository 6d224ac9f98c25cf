//! Integration tests of the edge engine: the shipped model, the runtime loader and the CLI.

mod cli;
mod fixtures;
mod model;
mod robustness;
mod runtime;
