//! AV1 bytes from the agent, as the viewer's decoder wrapper receives them (dav1d underneath).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_media::Av1Decoder;

fuzz_target!(|data: &[u8]| {
    let Ok(mut decoder) = Av1Decoder::new(1) else {
        return;
    };
    // Up to four packets: the first two bytes of each give its length.
    let mut rest = data;
    for _ in 0..4 {
        if rest.len() < 2 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (packet, tail) = rest[2..].split_at(len);
        let _ = decoder.decode(packet);
        rest = tail;
    }
});
