//! `just bench`: the recorded desktop corpus ([`corpus`]) and the benchmarks that replay it.

pub mod corpus;
pub mod relay_bench;
