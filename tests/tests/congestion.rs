//! Latency that never builds up: a real agent shares a scrolling terminal through a constrained
//! link (2 Mbit/s and 50 ms each way, with a deep buffer, between the agent and the relay) for a
//! minute. Its congestion control must keep capture-to-decoded latency bounded: not growing from
//! the first half minute to the second, and well below what the same stream would queue up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::shaper::{Link, Shaper};
use sightline_tests::*;
use std::time::{Duration, Instant};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn scrolling_through_two_megabits_and_fifty_ms_stays_bounded_for_a_minute() {
    let mut x = Xvfb::start(1280, 720);
    x.app_window(
        "xterm",
        &[
            "-title",
            "scroller",
            "-geometry",
            "160x45+0+0",
            "-fa",
            "Monospace",
            "-fs",
            "10",
            "-e",
            "sh",
            "-c",
            "while :; do ls -l /usr/bin /usr/lib; done",
        ],
        "scroller",
    );
    let mut relay = Relay::new(None);
    relay.start();
    let link = Link {
        rate_bps: 2_000_000,
        delay: Duration::from_millis(50),
    };
    let shaper = Shaper::start(&relay.addr, link, link);
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &[]);
    let code = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent_via(
        &shaper.addr,
        &tmp.path().join("agent"),
        &relay.fingerprint,
        &code,
        Some(&x.display),
        &[],
    );
    agent.write_line("y");
    assert_eq!(agent.wait_event("sharing", SLOW)["encoder"], "aom");
    viewer.wait_event("frame", SLOW);

    // One minute of scrolling: every decoded picture's latency, by when it arrived.
    let start = Instant::now();
    let minute = Duration::from_secs(60);
    let mut frames: Vec<(f64, f64)> = Vec::new();
    let mut sent: Vec<f64> = Vec::new();
    while let Some(left) = minute.checked_sub(start.elapsed()) {
        let Some(line) = viewer.next_line(left) else {
            break;
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v["event"].as_str() {
            Some("frame") => frames.push((
                start.elapsed().as_secs_f64(),
                v["latency_ms"].as_f64().unwrap(),
            )),
            Some("send_rate") => sent.push(v["send_kbps"].as_f64().unwrap()),
            Some("closed") => panic!("session ended early: {v}"),
            _ => {}
        }
    }
    let window = |from: f64, to: f64| -> Vec<f64> {
        frames
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|(_, l)| *l)
            .collect()
    };
    let (mut first, mut second) = (window(10.0, 35.0), window(35.0, 60.0));
    eprintln!(
        "{} frames; latency p50/p95 10-35 s: {:.0}/{:.0} ms, 35-60 s: {:.0}/{:.0} ms; sent kbit/s {:?}",
        frames.len(),
        percentile(&mut first.clone(), 0.5),
        percentile(&mut first.clone(), 0.95),
        percentile(&mut second.clone(), 0.5),
        percentile(&mut second.clone(), 0.95),
        sent
    );
    assert!(
        first.len() >= 25 && second.len() >= 25,
        "too few pictures: {} and {}",
        first.len(),
        second.len()
    );
    let (p95_first, p95_second) = (percentile(&mut first, 0.95), percentile(&mut second, 0.95));
    // Bounded: a second in the worst case on this link, where an uncontrolled stream queues
    // tens of seconds within the minute.
    assert!(
        p95_second < 1_000.0,
        "p95 latency {p95_second:.0} ms in the second half"
    );
    // Not growing.
    assert!(
        p95_second < p95_first + 300.0,
        "latency grew: p95 {p95_first:.0} → {p95_second:.0} ms"
    );
    // The controller found the link: it sends about what the link carries, no more (a queue)
    // and not far less (a starved picture).
    assert!(sent.len() >= 30, "{} send_rate reports", sent.len());
    let median_sent = percentile(&mut sent, 0.5);
    assert!(
        (600.0..=2_200.0).contains(&median_sent),
        "median send rate {median_sent:.0} kbit/s"
    );
    drop(shaper);
}
