//! The client↔relay requests and answers inside the relay channel: what a relay reads from
//! any client, and what a client reads from a relay.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::codec;
use sightline_core::relay_proto::{ClientMessage, RelayMessage};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<ClientMessage>(data, "fuzz client message");
    let _ = codec::decode::<RelayMessage>(data, "fuzz relay message");
});
