//! What several of the relay's integration tests share: running the real `relay` binary.

use std::path::Path;
use std::process::{Command, Output};

/// `relay --data-dir DATA ARGS...`, its output collected.
pub fn relay(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Its standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
