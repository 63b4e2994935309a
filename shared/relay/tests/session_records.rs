//! The relay library, real loopback connections, the real client: every paired session is on
//! record before it starts, with how it ended; a session the relay could not finish recording
//! (it stopped without warning) is recorded as ended abnormally when it next starts. The events
//! the agent signs reach the audit log through the operator's attached connection, checked
//! against the key the agent proved at join; a withheld event shows as a gap, a forged one is
//! refused and recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/live.rs"]
mod live;
use live::{eventually, pair_as, PairedUp, PASSWORD};
use rand_core::OsRng;
use sightline_core::identity::{Fingerprint, PrivateIdentity};
use sightline_core::relay_proto::Secret;
use sightline_core::session_events::{Answer, Consent, EventCounter, SessionEvent, SignedEvent};
use sightline_net::stream::{BoxIo, FramedStream};
use sightline_net::RelayClient;
use sightline_relay::store::db::Database;
use sightline_relay::store::sessions::{self, RELAY_STOPPED};
use std::path::Path;
use std::time::Duration;

/// A session paired between an operator and an agent: their streams.
async fn pair(
    addr: &str,
    pin: Fingerprint,
    key: &PrivateIdentity,
) -> (FramedStream<BoxIo>, FramedStream<BoxIo>) {
    let p = pair_as(addr, pin, key, None).await;
    (p.operator, p.agent)
}

fn records(dir: &Path) -> Vec<sessions::Record> {
    let db = Database::open(&dir.join("relay.db")).unwrap();
    sessions::recent(&db, 10).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_recorded_and_those_a_dead_relay_left_open_end_abnormally() {
    let (ca, mut peers) = live::keys(1).await;
    let key = peers.remove(0);
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    let live::Running {
        addr,
        relay: _relay,
        stop,
        served,
    } = live::start(dir.path(), &ca).await;

    // Paired: on record at once, running. The operator closes: it ended normally.
    let (op, agent) = pair(&addr, pin, &key).await;
    let first = records(dir.path());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].operator, "alice");
    assert_eq!(first[0].ended_at, None, "running");
    drop(op);
    drop(agent);
    eventually("the first session's end recorded", || {
        records(dir.path())[0].ended_at.is_some()
    })
    .await;
    let ended = &records(dir.path())[0];
    assert!(!ended.abnormal, "{ended:?}");
    assert!(ended
        .end_reason
        .as_deref()
        .unwrap()
        .contains("closed the connection"));

    // Two more sessions run when the relay stops without finishing anything (its tasks are
    // dropped, as a SIGKILL would leave them).
    let _live = [pair(&addr, pin, &key).await, pair(&addr, pin, &key).await];
    let _ = stop.send(());
    served.await.unwrap();
    drop(_relay);
    let open = records(dir.path());
    assert_eq!(open.iter().filter(|r| r.ended_at.is_none()).count(), 2);

    // The next start ends them as abnormal, and says so in the audit log.
    let _again = live::start(dir.path(), &ca).await;
    let all = records(dir.path());
    assert_eq!(all.len(), 3);
    for r in &all[1..] {
        assert!(r.abnormal, "{r:?}");
        assert_eq!(r.end_reason.as_deref(), Some(RELAY_STOPPED));
    }
    let db = Database::open(&dir.path().join("relay.db")).unwrap();
    let log = sightline_relay::store::audit::recent(&db, 50).unwrap();
    let count = |action: &str| log.iter().filter(|e| e.action == action).count();
    for action in [
        "code.issued",
        "code.redeemed",
        "session.paired",
        "session.ended",
    ] {
        assert_eq!(count(action), 3, "{action}: {log:#?}");
    }
    // The first session's entries, in order, all naming it.
    let first_id = &all[0].id;
    let first: Vec<_> = log
        .iter()
        .filter(|e| e.session.as_deref() == Some(first_id.as_str()))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        first,
        [
            "code.issued",
            "code.redeemed",
            "session.paired",
            "session.ended"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_the_operator_gives_up_is_recorded_as_withdrawn() {
    let (ca, mut peers) = live::keys(1).await;
    let key = peers.remove(0);
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    // Kept to the end: dropping `stop` stops the relay.
    let live::Running {
        addr,
        relay,
        stop: _stop,
        ..
    } = live::start(dir.path(), &ca).await;
    let mut c = Box::pin(RelayClient::connect(&addr, pin)).await.unwrap();
    c.login("alice", Secret::new(PASSWORD), None, &key)
        .await
        .unwrap();
    let created = c.create_session().await.unwrap();
    drop(c);
    eventually("the code withdrawn", || relay.registry.is_empty()).await;
    let session = hex::encode(created.session_id);
    let db_path = dir.path().join("relay.db");
    let mut actions = Vec::new();
    for _ in 0..250 {
        let db = Database::open(&db_path).unwrap();
        actions = sightline_relay::store::audit::recent(&db, 10)
            .unwrap()
            .into_iter()
            .filter(|e| e.session.as_deref() == Some(session.as_str()))
            .map(|e| e.action)
            .collect();
        if actions.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(actions, ["code.issued", "code.withdrawn"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_signed_events_reach_the_audit_log_through_the_operators_attachment() {
    let (ca, peers) = live::keys(3).await;
    let [key, agent, forger]: [PrivateIdentity; 3] = peers.try_into().ok().unwrap();
    let pin = ca.public().fingerprint();
    let dir = tempfile::tempdir().unwrap();
    let running = live::start(dir.path(), &ca).await;
    let addr = running.addr.clone();
    let PairedUp {
        operator: _op,
        agent: _agent_stream,
        session_id: sid,
        grant,
        ..
    } = pair_as(&addr, pin, &key, Some(&agent)).await;
    let cert = grant.certificate;
    let record = &records(dir.path())[0];
    assert_eq!(
        record.agent_key.as_deref(),
        Some(agent.public().fingerprint().to_string().as_str())
    );

    // The agent numbers and signs; the operator hands the events in on a second connection.
    let mut counter = EventCounter::new(sid);
    let mut sign = |k: &PrivateIdentity, e: SessionEvent| {
        SignedEvent::sign(k, &mut OsRng, &counter.next(100, e)).unwrap()
    };
    let asked = sign(
        &agent,
        SessionEvent::Asked {
            what: Consent::Control,
        },
    );
    let given = sign(
        &agent,
        SessionEvent::Answered {
            what: Consent::Control,
            answer: Answer::Given,
        },
    );
    let withheld = sign(
        &agent,
        SessionEvent::Asked {
            what: Consent::Viewing,
        },
    );
    let after_gap = sign(
        &agent,
        SessionEvent::Ended {
            reason: "ended by customer".into(),
        },
    );
    let forged = sign(
        &forger,
        SessionEvent::Answered {
            what: Consent::Viewing,
            answer: Answer::Given,
        },
    );
    drop(withheld);
    let connect = || async { Box::pin(RelayClient::connect(&addr, pin)).await.unwrap() };
    let mut up = connect()
        .await
        .attach(sid, cert.clone(), &key)
        .await
        .unwrap();
    assert_eq!(
        up.send_events(&[asked.clone(), given.clone()])
            .await
            .unwrap(),
        2
    );
    // Handed in twice: recorded once.
    assert_eq!(up.send_events(&[given]).await.unwrap(), 2);
    assert_eq!(up.send_events(&[after_gap]).await.unwrap(), 4);
    // A forged event ends the attachment and is recorded as refused.
    assert!(up.send_events(&[forged]).await.is_err());
    // Only the session's operator may attach: another key with the same certificate is refused.
    assert!(connect().await.attach(sid, cert, &agent).await.is_err());

    let db = Database::open(&dir.path().join("relay.db")).unwrap();
    let session = hex::encode(sid);
    let actions: Vec<String> = sightline_relay::store::audit::recent(&db, 50)
        .unwrap()
        .into_iter()
        .filter(|e| e.session.as_deref() == Some(session.as_str()))
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "code.issued",
            "code.redeemed",
            "session.paired",
            "consent.asked",
            "consent.given",
            "session.events_missing",
            "session.agent_ended",
            "session.events_refused",
        ]
    );
}
