//! The client's side of the relay channel handshake: what a viewer or an agent reads from
//! whatever answers at the relay's address, before anything is sent to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::identity::Fingerprint;
use sightline_core::relay_channel::ClientHandshake;

fuzz_target!(|data: &[u8]| {
    let pin = Fingerprint([7; 32]);
    if let Ok((client, _)) = ClientHandshake::start(pin, [1; 32], Default::default()) {
        let _ = client.finish(data, 1_800_000_000);
    }
});
