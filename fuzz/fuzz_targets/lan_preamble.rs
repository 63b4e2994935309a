//! The clear-text preamble of a direct (LAN-only) connection: what a kiosk reads from any
//! peer on its network before the handshake, and what a viewer reads from a kiosk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::identity::Fingerprint;
use sightline_core::lan::{AgentHello, OperatorHello};

fuzz_target!(|data: &[u8]| {
    let _ = AgentHello::from_bytes(data);
    if let Ok(hello) = OperatorHello::from_bytes(data) {
        let pin = Fingerprint([7; 32]);
        let _ = hello.pinned_authority(&pin, 1_800_000_000);
        let _ = hello.pinned_revocations(&pin);
    }
});
