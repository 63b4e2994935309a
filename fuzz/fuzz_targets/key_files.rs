//! Key material read from disk or from a peer: PKCS#8 PEM private keys (identity and CA key
//! files) and SubjectPublicKeyInfo DER public keys (in proofs, certificates, pins).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::identity::{PrivateIdentity, PublicIdentity, MIN_PEER_BITS};

fuzz_target!(|data: &[u8]| {
    let _ = PublicIdentity::from_spki_der(data, MIN_PEER_BITS);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PrivateIdentity::from_pkcs8_pem(text);
    }
});
