//! The viewer's known-hosts file (LAN-only agents and their key fingerprints).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_net::known_hosts::KnownHosts;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(hosts) = KnownHosts::parse(text) {
            let again = KnownHosts::parse(&hosts.to_text()).expect("what it writes, it reads");
            assert_eq!(again, hosts);
        }
    }
});
