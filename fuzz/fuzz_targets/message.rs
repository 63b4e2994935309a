//! The end-to-end application messages and identity proofs, as they come out of a decrypted,
//! reassembled Noise message: any bytes give a typed error or a message that encodes again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::codec;
use sightline_core::e2e::IdentityProof;
use sightline_core::messages::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = codec::decode::<Message>(data, "fuzz message") {
        let again = codec::encode(&message).expect("a decoded message encodes");
        let _ = codec::decode::<Message>(&again, "fuzz message again").expect("and decodes");
    }
    if let Ok(proof) = codec::decode::<IdentityProof>(data, "fuzz proof") {
        let _ = codec::encode(&proof).expect("a decoded proof encodes");
    }
});
