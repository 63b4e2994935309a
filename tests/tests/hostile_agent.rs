//! Integration, the viewer does not trust the agent blindly: an agent written here on the real
//! protocol (through the real relay, with the real end-to-end handshake) sends the real
//! headless viewer a grant it did not ask for, sequence numbers and capture times at the ends
//! of their range, picture sizes of zero and of ten billion pixels, garbage and oversized
//! video, malformed pointer images, and the pause and withdrawal messages. The viewer shows
//! none of the bad data, believes only the grant it asked for, reports the pause and the
//! withdrawal with their reasons, does not crash, and reports the close normally. No agent
//! binary is involved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use sightline_core::code::SessionCode;
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::identity::{PrivateIdentity, MIN_PEER_BITS};
use sightline_core::messages::{
    CloseReason, ConsentFor, CursorShape, Message, PauseReason, VideoCodec, WithdrawReason,
};
use sightline_media::pattern::screen_like_bgra;
use sightline_media::{bgra_to_yuv420, rav1e_encoder, EncoderSettings};
use sightline_net::session::{self, SessionEnd};
use sightline_net::RelayClient;
use sightline_tests::*;
use std::time::Duration;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(60);

/// The picture size of the valid stream.
const W: u32 = 64;
const H: u32 = 48;

/// Joins the session `code` as an agent would: relay channel pinned to the relay's key, the
/// operator's certificate checked against the relay CA, the real handshake.
async fn join_as_agent(
    relay: &Relay,
    code: &str,
) -> (
    sightline_net::stream::FramedStream<sightline_net::stream::BoxIo>,
    sightline_core::e2e::Session,
) {
    let key = tokio::task::spawn_blocking(|| {
        PrivateIdentity::generate(&mut rand_core::OsRng, MIN_PEER_BITS).unwrap()
    })
    .await
    .unwrap();
    let pin = relay.fingerprint.parse().unwrap();
    let client = Box::pin(RelayClient::connect(&relay.addr, pin))
        .await
        .unwrap();
    let code: SessionCode = code.parse().unwrap();
    let joined = client.join(&code).await.unwrap();
    let mut stream = joined.stream;
    let cfg = E2eConfig {
        session_id: joined.session_id,
        seed: sightline_net::clock::seed(),
        trust: Trust::OperatorCertificateFrom(joined.authority),
        channel: Default::default(),
    };
    let session = session::agent_handshake(&mut stream, cfg, &key)
        .await
        .unwrap();
    (stream, session)
}

/// One real AV1 keyframe of a `W` x `H` picture.
fn keyframe() -> Vec<u8> {
    let mut enc = rav1e_encoder(EncoderSettings {
        threads: 1,
        ..EncoderSettings::new(W, H)
    })
    .unwrap();
    let pic = bgra_to_yuv420(&screen_like_bgra(W, H, W as usize * 4, 9)).unwrap();
    // rav1e holds a few pictures back: submit the picture again until it comes out.
    for t in 0..16 {
        let packets = enc.encode(&pic, t, t == 0).unwrap();
        if let Some(p) = packets.into_iter().find(|p| p.capture_us == 0) {
            assert!(p.keyframe);
            return p.data;
        }
    }
    panic!("the encoder gave no packet");
}

fn config(width: u32, height: u32) -> Message {
    Message::VideoConfig {
        codec: VideoCodec::Av1,
        width,
        height,
    }
}

fn packet(seq: u64, capture_us: u64, keyframe: bool, data: Vec<u8>) -> Message {
    Message::VideoPacket {
        seq,
        capture_us,
        keyframe,
        data,
    }
}

/// Waits for the viewer's control request, skipping acknowledgements and the like.
async fn control_request(rx: &mut mpsc::Receiver<Message>) {
    loop {
        match tokio::time::timeout(T, rx.recv()).await {
            Ok(Some(Message::ControlRequest)) => return,
            Ok(Some(_)) => {}
            other => panic!("no control request from the viewer: {other:?}"),
        }
    }
}

/// The viewer's JSON events named `name`, in order.
fn events_named(viewer: &Proc, name: &str) -> Vec<Value> {
    viewer
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == name)
        .collect()
}

#[test]
fn the_viewer_does_not_trust_a_hostile_agent() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &["--request-control"]);
    let code = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let key = keyframe();

    let rt = test_runtime();
    let end = rt.block_on(async {
        let (stream, session) = join_as_agent(&relay, &code).await;
        let (to_viewer, mut from_viewer, pump) =
            test_peer_pump(stream, session, "hostile-agent", &["av1"]);
        tokio::task::block_in_place(|| viewer.wait_event("connected", T));
        let send = |msg: Message| {
            let to_viewer = to_viewer.clone();
            async move { to_viewer.send(msg).await.unwrap() }
        };

        // A grant out of the blue, before the viewer asked for anything.
        send(Message::Control { granted: true }).await;
        // Picture sizes of nothing and of ten billion pixels.
        send(config(0, 0)).await;
        send(config(100_000, 100_000)).await;
        send(packet(5, 0, true, key.clone())).await;
        // A valid size, then sequence numbers and capture times at both ends of their range,
        // garbage, an empty packet and one far larger than any picture of this size.
        send(config(W, H)).await;
        send(packet(u64::MAX, u64::MAX, true, vec![0xff; 3000])).await;
        send(packet(0, 0, false, (0..=255).collect())).await;
        send(packet(1, u64::MAX, true, Vec::new())).await;
        send(packet(2, 1, true, vec![0x12; 4 << 20])).await;
        // Pointer images whose data does not match their size, and a position that is no
        // number.
        for (width, height, len) in [(16, 16, 7), (u16::MAX, u16::MAX, 16), (0, 0, 0)] {
            send(Message::Cursor {
                x: 0.5,
                y: 0.5,
                visible: true,
                shape: Some(CursorShape {
                    width,
                    height,
                    hot_x: u16::MAX,
                    hot_y: u16::MAX,
                    rgba: vec![0xaa; len],
                }),
            })
            .await;
        }
        send(Message::Cursor {
            x: f32::NAN,
            y: f32::INFINITY,
            visible: true,
            shape: None,
        })
        .await;
        // A real keyframe: the decoder survived all that.
        send(packet(3, 0, true, key.clone())).await;
        let frame = tokio::task::block_in_place(|| viewer.wait_event("frame", T));
        assert_eq!(frame["seq"], 3, "{frame}");
        assert_eq!(
            (frame["width"].clone(), frame["height"].clone()),
            (json!(W), json!(H))
        );

        // Video arrived, so the viewer's held request went out; only now is a grant believed.
        control_request(&mut from_viewer).await;
        send(Message::ConsentPending {
            what: ConsentFor::Control,
        })
        .await;
        send(Message::Control { granted: true }).await;
        let granted = tokio::task::block_in_place(|| viewer.wait_event("control", T));
        assert_eq!(
            granted,
            json!({"event": "control", "granted": true, "revoked": false})
        );

        // The banner goes: control is withdrawn and sharing pauses; a grant meanwhile is
        // ignored; then sharing resumes.
        send(Message::ControlWithdrawn {
            reason: WithdrawReason::BannerGone,
        })
        .await;
        send(Message::Control { granted: false }).await;
        send(Message::SharingPaused {
            reason: PauseReason::BannerGone,
        })
        .await;
        send(Message::Control { granted: true }).await;
        send(Message::SharingResumed).await;
        tokio::task::block_in_place(|| viewer.wait_event("resumed", T));

        send(Message::Close {
            reason: CloseReason::EndedByCustomer,
        })
        .await;
        tokio::time::timeout(T, pump).await.unwrap().unwrap()
    });
    assert_eq!(end, SessionEnd::LocalClosed(CloseReason::EndedByCustomer));

    let closed = viewer.wait_event("closed", T);
    assert_eq!(
        closed,
        json!({"event": "closed", "reason": "ended by customer", "normal": true})
    );
    let status = viewer.wait_exit(T);
    let stderr = viewer.stderr();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Only the grant the viewer asked for, then the withdrawal with its reason.
    assert_eq!(
        events_named(&viewer, "control"),
        vec![
            json!({"event": "control", "granted": true, "revoked": false}),
            json!({"event": "control", "granted": false, "revoked": true, "by": "agent",
                   "reason": "the customer's on-screen banner was removed"}),
        ],
        "events: {:?}",
        viewer.seen
    );
    assert_eq!(
        events_named(&viewer, "paused"),
        vec![json!({"event": "paused", "reason": "the customer's on-screen banner is gone"})]
    );
    assert_eq!(
        events_named(&viewer, "resumed"),
        vec![json!({"event": "resumed"})]
    );
    // Only the valid size was announced, and only the real keyframe was shown.
    assert_eq!(
        events_named(&viewer, "video"),
        vec![json!({"event": "video", "width": W, "height": H})]
    );
    let frames: Vec<Value> = events_named(&viewer, "frame")
        .iter()
        .map(|f| f["seq"].clone())
        .collect();
    assert_eq!(frames, vec![json!(3)]);
    // What was refused is logged.
    for line in [
        "ignoring a control grant this viewer did not ask for",
        "refusing the agent's video configuration",
    ] {
        assert!(stderr.contains(line), "no {line:?} in:\n{stderr}");
    }
}
