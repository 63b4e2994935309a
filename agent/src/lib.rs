//! The agent's platform side, as a library the `agent` binary drives:
//! - [`capture`]: lists monitors and captures one of them (frames, change detection, cursor);
//! - [`input`]: injects the operator's pointer and keyboard events into the local session.

pub mod bundled;
pub mod capture;
pub mod control;
pub mod control_state;
pub mod controller;
pub mod customer;
pub mod indicator;
pub mod input;
pub mod lan;
pub mod rights;
pub mod share;
