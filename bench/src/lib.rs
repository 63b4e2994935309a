//! `just bench`: the recorded desktop corpus ([`corpus`]) and the benchmarks that replay it.

pub mod attack;
pub mod corpus;
pub mod e2e;
pub mod pipeline;
pub mod player;
pub mod recording_bench;
pub mod relay_bench;
