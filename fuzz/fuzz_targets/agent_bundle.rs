//! The preconfigured agent's trailer, as the agent reads its own file at start and the relay
//! reads the file it hands out: any bytes at the end of an executable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::bundle::{self, Footer, FOOTER_LEN};

fuzz_target!(|data: &[u8]| {
    let _ = bundle::open(data);
    let _ = bundle::program(data);
    // The footer alone against any claimed file length, as the agent reads it first.
    if data.len() >= FOOTER_LEN + 8 {
        let (len, rest) = data.split_at(8);
        let mut n = [0u8; 8];
        n.copy_from_slice(len);
        let _ = Footer::parse(&rest[..FOOTER_LEN], u64::from_le_bytes(n));
    }
});
