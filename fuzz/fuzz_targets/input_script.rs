//! The viewer's input scripts (`--send-input FILE`).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../viewer/src/script.rs"]
mod script;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = script::parse(text);
    }
});
