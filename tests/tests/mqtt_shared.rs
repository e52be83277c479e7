//! MQTT 5.0 shared subscriptions (`$share/group/filter`): the group's members
//! split the messages between them (each message to exactly one member), and
//! messages a member leaves unacknowledged go to the others when it leaves.
//! A persistent session's membership outlives its connection and a restart,
//! and the group queue ends with its last member.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rumqttc::QoS;
use tests::amqp;
use tests::mqtt::{V4Client, V5Client, V5QoS, v4_options, v5_options};
use tests::{TestBroker, body_seq, seq_body, within};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const FILTER: &str = "$share/g/t";

/// Moves `client` to a task that forwards `(member, seq, dup)` for every
/// PUBLISH it receives. Aborting the task drops the client, which closes its
/// socket without a DISCONNECT.
fn collect(
    mut client: V5Client,
    member: usize,
    tx: mpsc::UnboundedSender<(usize, u64, bool)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let p = client.next_publish().await;
            if tx.send((member, body_seq(&p.payload), p.dup)).is_err() {
                return;
            }
        }
    })
}

async fn member(addr: std::net::SocketAddr, id: &str, manual_acks: bool) -> V5Client {
    let mut opts = v5_options(addr, id);
    opts.set_manual_acks(manual_acks);
    let (mut c, _) = V5Client::connect(opts).await;
    c.subscribe(FILTER, V5QoS::AtLeastOnce).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_3000_messages_evenly() {
    const N: u64 = 3000;
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let c = member(addr, &format!("member-{i}"), false).await;
        tasks.push(collect(c, i, tx.clone()));
    }
    let (mut publ, _) = V5Client::connect(v5_options(addr, "share-pub")).await;
    // Paced in batches of 100 PUBACKed publishes: each member's backlog stays
    // small, so the split below measures the broker's round-robin between
    // members, not which member's event loop happens to read fastest.
    for batch in 0..N / 100 {
        for n in batch * 100..(batch + 1) * 100 {
            within(
                "publish request",
                publ.client
                    .publish("t", V5QoS::AtLeastOnce, false, seq_body(n)),
            )
            .await
            .expect("publish");
        }
        for _ in 0..100 {
            publ.wait_for("PUBACK", |p| {
                matches!(p, tests::mqtt::v5p::Packet::PubAck(_)).then_some(())
            })
            .await;
        }
    }
    let mut seen = BTreeSet::new();
    let mut per_member = BTreeMap::new();
    while (seen.len() as u64) < N {
        let (m, seq, _) = within("shared deliveries", rx.recv())
            .await
            .expect("collectors alive");
        assert!(seen.insert(seq), "message {seq} delivered twice");
        *per_member.entry(m).or_insert(0u64) += 1;
    }
    assert_eq!(seen, (0..N).collect::<BTreeSet<_>>(), "lost messages");
    // Nothing more (no duplicates arriving late).
    if let Ok(Some((m, seq, _))) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
    {
        panic!("duplicate delivery of {seq} to member {m}");
    }
    println!("split: {per_member:?}");
    for i in 0..3 {
        let got = per_member.get(&i).copied().unwrap_or(0);
        assert!(
            (850..=1150).contains(&got),
            "member {i} got {got} of {N}; expected 1000 ± 15% ({per_member:?})"
        );
    }
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_of_a_leaving_member_go_to_the_others() {
    const N: u64 = 30;
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Member 0 never acknowledges anything.
    let quitter = collect(member(addr, "quitter", true).await, 0, tx.clone());
    let stayers = [
        collect(member(addr, "stayer-1", false).await, 1, tx.clone()),
        collect(member(addr, "stayer-2", false).await, 2, tx.clone()),
    ];
    let (mut publ, _) = V5Client::connect(v5_options(addr, "share-pub")).await;
    for n in 0..N {
        publ.publish("t", V5QoS::AtLeastOnce, false, seq_body(n))
            .await;
    }
    // First round: every message reaches exactly one member.
    let mut held_by_quitter = BTreeSet::new();
    let mut with_stayers = BTreeSet::new();
    for _ in 0..N {
        let (m, seq, _) = within("first deliveries", rx.recv()).await.expect("alive");
        let fresh = if m == 0 {
            held_by_quitter.insert(seq)
        } else {
            with_stayers.insert(seq)
        };
        assert!(fresh, "message {seq} delivered twice to member {m}");
    }
    assert!(
        !held_by_quitter.is_empty(),
        "the quitter got no messages; the test proves nothing"
    );
    // The quitter disappears without acknowledging.
    quitter.abort();
    let mut redelivered = BTreeSet::new();
    while with_stayers.len() < N as usize {
        let (m, seq, dup) = within("redeliveries to the remaining members", rx.recv())
            .await
            .expect("alive");
        assert_ne!(m, 0, "the quitter is gone");
        assert!(
            held_by_quitter.contains(&seq),
            "message {seq} redelivered although a remaining member had it"
        );
        assert!(dup, "a redelivery carries DUP=1");
        assert!(with_stayers.insert(seq), "message {seq} redelivered twice");
        redelivered.insert(seq);
    }
    assert_eq!(redelivered, held_by_quitter);
    for t in stayers {
        t.abort();
    }
}

// Persistent sessions: a shared subscription is part of each member's session
// (MQTT 5.0 §4.8.2), so it outlives the member's connection and a restart.

fn persistent_v4(addr: std::net::SocketAddr, id: &str) -> rumqttc::MqttOptions {
    let mut opts = v4_options(addr, id);
    opts.set_clean_session(false);
    opts
}

/// Publishes `seqs` to `t` at QoS 1, each PUBACKed (so queued) before the next.
async fn publish_seqs(addr: std::net::SocketAddr, seqs: std::ops::Range<u64>) {
    let (mut publ, _) = V4Client::connect(v4_options(addr, "group-pub")).await;
    for n in seqs {
        publ.publish("t", QoS::AtLeastOnce, false, seq_body(n))
            .await;
    }
    publ.disconnect().await;
}

/// Receives `n` publishes and returns their sequence numbers.
async fn receive_seqs(c: &mut V4Client, n: usize) -> BTreeSet<u64> {
    let mut got = BTreeSet::new();
    for _ in 0..n {
        let p = c.next_publish().await;
        assert!(got.insert(body_seq(&p.payload)), "duplicate delivery");
    }
    got
}

/// Whether the queue `name` exists (a passive declare on a fresh channel: a
/// 404 closes the channel).
async fn queue_exists(conn: &lapin::Connection, name: &str) -> bool {
    let ch = amqp::open_channel(conn).await;
    match amqp::passive_declare(&ch, name).await {
        Ok(_) => true,
        Err(e) if tests::reply_code(&e) == Some(404) => false,
        Err(e) => panic!("passive declare of {name}: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_member_gets_the_group_messages_published_while_it_was_away() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "pm-a")).await;
    assert!(!ack.session_present);
    c.subscribe("$share/g/t", QoS::AtLeastOnce).await;
    c.disconnect().await;

    publish_seqs(addr, 0..10).await;

    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "pm-a")).await;
    assert!(
        ack.session_present,
        "the session (with its membership) was kept"
    );
    // No SUBSCRIBE: the membership is part of the session.
    assert_eq!(receive_seqs(&mut c, 10).await, (0..10).collect());
    publish_seqs(addr, 10..11).await;
    assert_eq!(receive_seqs(&mut c, 1).await, (10..11).collect());
    c.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_membership_and_queued_group_messages_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "pm-b")).await;
    c.subscribe("$share/g/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    publish_seqs(addr, 0..5).await;

    broker.restart().await;
    let addr = broker.mqtt_addr();

    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "pm-b")).await;
    assert!(ack.session_present, "session lost in the restart");
    assert_eq!(
        receive_seqs(&mut c, 5).await,
        (0..5).collect(),
        "group messages lost in the restart"
    );
    publish_seqs(addr, 5..6).await;
    assert_eq!(
        receive_seqs(&mut c, 1).await,
        (5..6).collect(),
        "membership lost in the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_members_group_ends_with_its_connection() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let amqp_conn = broker.connect().await;
    let (mut c, _) = V4Client::connect(v4_options(addr, "clean-c")).await;
    c.subscribe("$share/c/t", QoS::AtLeastOnce).await;
    assert!(queue_exists(&amqp_conn, "$share/c/t").await);
    c.disconnect().await;
    // The connection's cleanup runs after the socket closed: poll for its end.
    within("the group queue to be deleted", async {
        while queue_exists(&amqp_conn, "$share/c/t").await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (mut c, ack) = V4Client::connect(v4_options(addr, "clean-c")).await;
    assert!(!ack.session_present);
    publish_seqs(addr, 0..1).await;
    c.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqp_consumer_competes_with_a_reconnected_persistent_member() {
    const N: u64 = 40;
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "pm-d")).await;
    c.subscribe("$share/d/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "pm-d")).await;
    assert!(ack.session_present);

    let amqp_conn = broker.connect().await;
    let ch = amqp::open_channel(&amqp_conn).await;
    let mut consumer = amqp::consume(&ch, "$share/d/t").await;
    publish_seqs(addr, 0..N).await;

    let (mut by_member, mut by_amqp) = (BTreeSet::new(), BTreeSet::new());
    while by_member.len() + by_amqp.len() < N as usize {
        tokio::select! {
            p = c.next_publish() => {
                assert!(by_member.insert(body_seq(&p.payload)), "duplicate to the member");
            }
            d = tests::next_delivery(&mut consumer) => {
                amqp::ack(&d).await;
                assert!(by_amqp.insert(body_seq(&d.data)), "duplicate to AMQP");
            }
        }
    }
    assert!(by_member.is_disjoint(&by_amqp), "a message went to both");
    let all: BTreeSet<u64> = by_member.union(&by_amqp).copied().collect();
    assert_eq!(all, (0..N).collect());
    assert!(
        !by_member.is_empty() && !by_amqp.is_empty(),
        "no competition: member {} / AMQP {}",
        by_member.len(),
        by_amqp.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_the_last_persistent_member_deletes_the_group() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let amqp_conn = broker.connect().await;
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "pm-e")).await;
    c.subscribe("$share/e/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    publish_seqs(addr, 0..3).await;
    assert!(
        queue_exists(&amqp_conn, "$share/e/t").await,
        "an offline persistent member keeps the group"
    );
    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "pm-e")).await;
    assert!(ack.session_present);
    assert_eq!(receive_seqs(&mut c, 3).await, (0..3).collect());
    c.unsubscribe("$share/e/t").await;
    // The group is deleted before the UNSUBACK goes out.
    assert!(
        !queue_exists(&amqp_conn, "$share/e/t").await,
        "the group outlived its last member"
    );
    c.disconnect().await;
    let (_c, ack) = V4Client::connect(persistent_v4(addr, "pm-e")).await;
    assert!(ack.session_present);
    assert!(
        !queue_exists(&amqp_conn, "$share/e/t").await,
        "the reconnect re-joined a group it had left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_start_ends_the_previous_sessions_membership() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let amqp_conn = broker.connect().await;
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "pm-f")).await;
    c.subscribe("$share/f/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    publish_seqs(addr, 0..2).await;
    let (mut c, ack) = V4Client::connect(v4_options(addr, "pm-f")).await;
    assert!(!ack.session_present);
    // The old session (and the group it was the last member of) went before the CONNACK.
    assert!(
        !queue_exists(&amqp_conn, "$share/f/t").await,
        "the group outlived the session"
    );
    publish_seqs(addr, 2..3).await;
    c.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_ends_a_v5_membership() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let amqp_conn = broker.connect().await;
    let mut opts = v5_options(addr, "pm-g");
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(1));
    let (mut c, _) = V5Client::connect(opts).await;
    c.subscribe("$share/x/t", V5QoS::AtLeastOnce).await;
    c.disconnect().await;
    assert!(
        queue_exists(&amqp_conn, "$share/x/t").await,
        "the group is kept while the session lasts"
    );
    // Expiry is a timer (1 s): poll for its effect.
    within("the session to expire with its group", async {
        while queue_exists(&amqp_conn, "$share/x/t").await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_a_membership_and_deleting_the_session_deletes_the_group() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let amqp_conn = broker.connect().await;
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "pm-h")).await;
    c.subscribe("$share/h/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/mqtt/sessions/%2F/pm-h", broker.http_url());
    let resp = within(
        "GET session",
        http.get(&url).basic_auth("guest", Some("guest")).send(),
    )
    .await
    .expect("GET");
    let session: serde_json::Value = within("session JSON", resp.json()).await.expect("JSON");
    let filters: Vec<&str> = session["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .filter_map(|s| s["filter"].as_str())
        .collect();
    assert_eq!(filters, ["$share/h/t"], "{session}");
    let resp = within(
        "DELETE session",
        http.delete(&url).basic_auth("guest", Some("guest")).send(),
    )
    .await
    .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 204);
    assert!(
        !queue_exists(&amqp_conn, "$share/h/t").await,
        "the group outlived its only member's session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_groups_the_mqtt_side_made_are_deleted_and_clean_ones_not_restored() {
    let mut broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    // An AMQP application's own durable queue that happens to have a group's name.
    {
        let conn = broker.connect().await;
        let ch = amqp::open_channel(&conn).await;
        let options = lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        amqp::declare_queue_with(&ch, "$share/own/t", options)
            .await
            .expect("declare");
    }
    let (mut c, _) = V4Client::connect(v4_options(addr, "clean-j")).await;
    c.subscribe("$share/own/t", QoS::AtLeastOnce).await;
    c.unsubscribe("$share/own/t").await;
    // A clean member still connected when the broker restarts.
    c.subscribe("$share/j/t", QoS::AtLeastOnce).await;

    broker.restart().await;
    drop(c);

    let amqp_conn = broker.connect().await;
    within("the clean group to be gone after the restart", async {
        while queue_exists(&amqp_conn, "$share/j/t").await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        queue_exists(&amqp_conn, "$share/own/t").await,
        "a queue the MQTT side did not make was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_persistent_groups_come_back_and_clean_ones_go() {
    let dir = tempfile::Builder::new()
        .prefix("broker-mqtt-shared-kill-")
        .tempdir()
        .expect("temp dir");
    let mut broker = tokio::task::block_in_place(|| {
        tests::child::ChildBroker::spawn(env!("CARGO_BIN_EXE_test-broker"), dir.path())
    })
    .expect("child broker starts");
    let addr = broker.mqtt_addr();
    let (mut p, _) = V4Client::connect(persistent_v4(addr, "pm-k")).await;
    p.subscribe("$share/p/t", QoS::AtLeastOnce).await;
    p.disconnect().await;
    // A clean member, connected when the broker dies: its group must not come back.
    let (mut c, _) = V4Client::connect(v4_options(addr, "clean-k")).await;
    c.subscribe("$share/k/t", QoS::AtLeastOnce).await;
    publish_seqs(addr, 0..3).await;
    for _ in 0..3 {
        c.next_publish().await;
    }
    drop(c);

    tokio::task::block_in_place(|| broker.kill9()).expect("SIGKILL");
    tokio::task::block_in_place(|| broker.restart()).expect("restart");
    let addr = broker.mqtt_addr();

    let amqp_conn = tests::connect_with_retry(broker.addr(), Duration::from_secs(10))
        .await
        .expect("AMQP connection");
    // Start-up removes groups without a recorded membership in a background task.
    within("the clean member's group to be gone", async {
        while queue_exists(&amqp_conn, "$share/k/t").await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (mut p, ack) = V4Client::connect(persistent_v4(addr, "pm-k")).await;
    assert!(ack.session_present, "session lost in the crash");
    assert_eq!(
        receive_seqs(&mut p, 3).await,
        (0..3).collect(),
        "the persistent member's group lost messages in the crash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_from_one_group_wakes_another_waiting_for_the_receive_window() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let mut opts = v5_options(addr, "window-member");
    opts.set_receive_maximum(Some(1));
    opts.set_manual_acks(true);
    let (mut member, _) = V5Client::connect(opts).await;
    member
        .subscribe("$share/g1/w/one", V5QoS::AtLeastOnce)
        .await;
    member
        .subscribe("$share/g2/w/two", V5QoS::AtLeastOnce)
        .await;
    let (mut publ, _) = V5Client::connect(v5_options(addr, "window-pub")).await;
    publ.publish("w/one", V5QoS::AtLeastOnce, false, "one")
        .await;
    publ.publish("w/two", V5QoS::AtLeastOnce, false, "two")
        .await;
    // One unit of window: one group's message comes, the other's waits in its queue.
    let first = member.next_publish().await;
    within("PUBACK request", member.client.ack(&first))
        .await
        .expect("ack");
    // The unit comes back to the first group's queue; the second must hear of it.
    let second = member.next_publish().await;
    let mut got = [first.payload.to_vec(), second.payload.to_vec()];
    got.sort();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
}
