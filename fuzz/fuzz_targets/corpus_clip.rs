//! The benchmark corpus reader: an animated PNG clip from disk, probed and played back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

#[allow(dead_code)]
#[path = "../../bench/src/corpus.rs"]
mod corpus;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let _ = corpus::probe(file.path());
    if let Ok(mut reader) = corpus::ClipReader::open(file.path()) {
        // A clip that claims a huge picture is refused by the reader, so this stays bounded.
        for _ in 0..64 {
            match reader.next_frame() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
});
