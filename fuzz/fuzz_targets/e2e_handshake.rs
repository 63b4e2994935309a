//! The end-to-end handshake's states fed bytes from a peer (or a relay in the middle): the
//! agent's first and last steps, the operator's middle step. Every outcome is a typed error or
//! the next state; nothing panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_core::e2e::{AgentHandshake, E2eConfig, OperatorHandshake, Trust};
use sightline_core::frame::FrameDecoder;

fn cfg(seed: u8) -> E2eConfig {
    E2eConfig {
        session_id: [3; 16],
        seed: [seed; 32],
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    }
}

fn unframe(framed: &[u8]) -> Option<Vec<u8>> {
    let mut d = FrameDecoder::new();
    d.push(framed);
    d.next_message().ok().flatten()
}

fuzz_target!(|data: &[u8]| {
    let Some((which, bytes)) = data.split_first() else {
        return;
    };
    match which % 3 {
        // The agent reads a first message.
        0 => {
            if let Ok(agent) = AgentHandshake::new(cfg(2)) {
                let _ = agent.read_hello(bytes);
            }
        }
        // The operator reads a second message after its own first.
        1 => {
            if let Ok((operator, _)) = OperatorHandshake::start(cfg(1)) {
                let _ = operator.read_response(bytes);
            }
        }
        // The agent reads a third message after a real first one.
        _ => {
            let Ok((_, m1)) = OperatorHandshake::start(cfg(1)) else {
                return;
            };
            let Some(m1) = unframe(&m1) else { return };
            let Ok(agent) = AgentHandshake::new(cfg(2)) else {
                return;
            };
            if let Ok((agent, _)) = agent.read_hello(&m1) {
                let _ = agent.read_finish(bytes);
            }
        }
    }
});
