//! Signed objects a relay, a viewer or a kiosk reads from the wire or from disk: operator
//! certificates, issuing-key certificates with their root (an authority), revocation lists.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::authority::Authority;
use sightline_core::cert::OperatorCert;
use sightline_core::revocation::RevocationList;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = OperatorCert::from_bytes(data) {
        let _ = cert.unverified_body();
    }
    if let Ok(authority) = Authority::from_bytes(data) {
        let _ = authority.check_valid(1_800_000_000);
        if let Ok(cert) = OperatorCert::from_bytes(data) {
            let _ = authority.verify_operator(&cert, 1_800_000_000);
        }
    }
    if let Ok(list) = RevocationList::from_bytes(data) {
        let _ = list.check(1);
        let _ = list.is_newer_than(None);
    }
});
