//! Configuration files an admin or a user writes: the relay's `relay.toml` and `policy.toml`,
//! the clients' `viewer.toml` / `agent.toml`. Any text gives a clear error or a valid setting.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = sightline_relay::config::Config::parse(text, Path::new("relay.toml")) {
        let _ = config.listeners();
    }
    let _ = sightline_relay::policy::Policy::parse(text, Path::new("policy.toml"));
    let _ = sightline_net::cli::ClientConfig::parse(text, Path::new("viewer.toml"));
});
