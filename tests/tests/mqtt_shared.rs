//! MQTT 5.0 shared subscriptions (`$share/group/filter`): the group's members
//! split the messages between them (each message to exactly one member), and
//! messages a member leaves unacknowledged go to the others when it leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tests::mqtt::{V5Client, V5QoS, v5_options};
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
