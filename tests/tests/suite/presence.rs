//! Presence in the record: a participant who drops and comes back within the grace period
//! never left (venue Wi-Fi, or a client reconnecting in a loop, writes nothing); one who stays
//! away is logged as having left when they did, and a server that stops logs the departures
//! still waiting.

use std::time::Duration;

use toron_domain::policy::Role;
use toron_protocol::Event;
use toron_server::Running;
use toron_tests::roster;
use toron_tests::LIMIT;

/// The presence records of `participant`: (joined, at_ms), in log order.
fn presence_of(server: &Running, participant: &str) -> Vec<(bool, u64)> {
    server
        .store()
        .events(1, 100_000)
        .expect("events")
        .into_iter()
        .filter_map(|e| match e {
            Event::Presence { presence: p, .. } if p.participant == participant => {
                Some((p.joined, p.at_ms))
            }
            _ => None,
        })
        .collect()
}

/// Waits (bounded) until the server has handled the close of `participant`'s connection.
async fn gone(server: &Running, participant: &str) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server
        .hub()
        .present_in(roster::SESSION)
        .iter()
        .any(|p| p == participant)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the close was not seen"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_within_the_grace_period_is_not_a_departure() {
    let (dir, server, clock, tokens) =
        roster::on_manual_clock(|c| c.presence_grace = Duration::from_millis(800)).await;
    let activist = roster::who(Role::Activist);
    let token = tokens
        .iter()
        .find(|(r, _)| *r == Role::Activist)
        .map(|(_, t)| t.clone())
        .expect("token");
    let case = roster::Kind::Case.key(Role::Activist).document_id();
    roster::set_phase(&server, toron_domain::policy::Phase::Live).await;

    // Joins, then drops and comes back ten times, each within the grace period.
    for _ in 0..10 {
        let mut conn = roster::connect(&server, &token).await.expect("connect");
        conn.find(case, LIMIT).await.expect("reads the case");
        conn.close().await;
        gone(&server, &activist).await;
        clock.advance_ms(1_000);
    }
    // Away for good since the last close: "left" once the grace period has passed, dated
    // when it began.
    let left_at = clock.now_ms() - 1_000;
    clock.advance_ms(60_000);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let records = presence_of(&server, &activist);
        if records.len() == 2 {
            assert!(records[0].0, "joined first: {records:?}");
            assert_eq!(records[1], (false, left_at), "{records:?}");
            break;
        }
        assert!(
            records.len() < 2,
            "one join and one departure only: {records:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never logged as left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A departure still in its grace period when the server stops is logged by the stop.
    let mut conn = roster::connect(&server, &token).await.expect("connect");
    conn.find(case, LIMIT).await.expect("reads the case");
    conn.close().await;
    gone(&server, &activist).await;
    server.shutdown().await.expect("shutdown");
    let store = toron_server::store::Store::open(dir.path(), None).expect("store");
    let records: Vec<bool> = store
        .events(1, 100_000)
        .expect("events")
        .into_iter()
        .filter_map(|e| match e {
            Event::Presence { presence: p, .. } if p.participant == activist => Some(p.joined),
            _ => None,
        })
        .collect();
    store.close();
    assert_eq!(records, [true, false, true, false], "{records:?}");
}
