//! The length-prefixed framing every stream starts with: bytes from the network in chunks of
//! any size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::frame::{FrameDecoder, MAX_NOISE_MESSAGE};

fuzz_target!(|data: &[u8]| {
    // The first byte sets how the bytes arrive (1 to 256 at a time).
    let Some((step, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = FrameDecoder::new();
    for chunk in rest.chunks(usize::from(*step) + 1) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => assert!(message.len() <= MAX_NOISE_MESSAGE),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
});
