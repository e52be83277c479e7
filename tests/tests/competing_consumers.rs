//! Several consumers on one queue: fair round-robin dispatch without loss or
//! duplication, a stuck consumer does not stall the others, and unacked
//! messages of a closed channel are redelivered first, flagged redelivered.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use tests::{TestBroker, assert_no_delivery, body_seq, next_delivery, seq_body, within};
use tokio::sync::mpsc;

const QUEUE: &str = "work";

/// One delivery as seen by a consumer task: (consumer id, sequence, redelivered).
type Seen = (usize, u64, bool);

async fn open(broker: &TestBroker) -> (Connection, Channel) {
    let conn = broker.connect().await;
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("open channel");
    (conn, ch)
}

async fn consumer(ch: &Channel, prefetch: u16) -> Consumer {
    within(
        "basic.qos",
        ch.basic_qos(prefetch, BasicQosOptions::default()),
    )
    .await
    .expect("qos");
    within(
        "basic.consume",
        ch.basic_consume(
            QUEUE.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("consume")
}

/// Runs a consumer that acks everything and reports each delivery.
fn spawn_acking(
    id: usize,
    conn: Connection,
    mut consumer: Consumer,
    seen: mpsc::UnboundedSender<Seen>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _conn = conn; // keep the connection open as long as the task runs
        while let Some(Ok(d)) = consumer.next().await {
            // Ack before reporting, so whoever waits for the report knows the
            // ack is on its way.
            if d.ack(BasicAckOptions::default()).await.is_err() {
                return;
            }
            if seen.send((id, body_seq(&d.data), d.redelivered)).is_err() {
                return;
            }
        }
    })
}

/// Publishes `range` to the work queue with confirms, pipelined, and waits
/// for all of them.
async fn publish(ch: &Channel, range: std::ops::Range<u64>) {
    if !ch.status().confirm() {
        within(
            "confirm.select",
            ch.confirm_select(ConfirmSelectOptions::default()),
        )
        .await
        .expect("confirm.select");
    }
    let mut confirms = Vec::new();
    for n in range {
        let c = within(
            "publish",
            ch.basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                &seq_body(n),
                BasicProperties::default(),
            ),
        )
        .await
        .expect("publish");
        confirms.push(c);
    }
    for c in confirms {
        assert!(within("confirm", c).await.expect("confirm").is_ack());
    }
}

async fn collect(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize) -> Vec<Seen> {
    let mut out = Vec::with_capacity(n);
    within(&format!("{n} deliveries"), async {
        while out.len() < n {
            out.push(rx.recv().await.expect("consumer tasks alive"));
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_the_load_fairly_without_loss_or_duplicates() {
    const TOTAL: u64 = 3000;
    let broker = TestBroker::start().await;
    let (_pconn, pch) = open(&broker).await;
    within(
        "declare",
        pch.queue_declare(
            QUEUE.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");

    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for id in 0..3 {
        let (conn, ch) = open(&broker).await;
        let c = consumer(&ch, 10).await;
        tasks.push(spawn_acking(id, conn, c, tx.clone()));
    }
    // Paced: each batch of 15 is consumed (and acked) before the next is
    // published, so a consumer holds at most 5 + 5 < 10 unacked and never runs
    // out of credit. The share then measures the broker's round-robin, not
    // how fast each client task acks on two busy cores (with a flood, the
    // fastest task would get more, legitimately).
    let mut seen = Vec::new();
    for start in (0..TOTAL).step_by(15) {
        publish(&pch, start..start + 15).await;
        seen.extend(collect(&mut rx, 15).await);
    }
    let mut per_consumer = [0u64; 3];
    let mut copies: BTreeMap<u64, u32> = BTreeMap::new();
    for (id, seq, _) in &seen {
        per_consumer[*id] += 1;
        *copies.entry(*seq).or_default() += 1;
    }
    let duplicates: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicated: {duplicates:?}");
    assert_eq!(
        copies.keys().copied().collect::<Vec<_>>(),
        (0..TOTAL).collect::<Vec<_>>(),
        "lost messages"
    );
    eprintln!("deliveries per consumer: {per_consumer:?}");
    for (id, n) in per_consumer.iter().enumerate() {
        assert!(
            (850..=1150).contains(n),
            "consumer {id} got {n} of {TOTAL}: {per_consumer:?}"
        );
    }
    let q = within(
        "declare",
        pch.queue_declare(
            QUEUE.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("passive declare");
    assert_eq!(q.message_count(), 0);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_that_never_acks_does_not_stall_the_others() {
    const TOTAL: u64 = 300;
    let broker = TestBroker::start().await;
    let (_pconn, pch) = open(&broker).await;
    within(
        "declare",
        pch.queue_declare(
            QUEUE.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");

    // The stuck consumer subscribes first, so it is first in line.
    let (_sconn, sch) = open(&broker).await;
    let mut stuck = consumer(&sch, 1).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for id in 0..2 {
        let (conn, ch) = open(&broker).await;
        let c = consumer(&ch, 10).await;
        tasks.push(spawn_acking(id, conn, c, tx.clone()));
    }
    publish(&pch, 0..TOTAL).await;

    let held = next_delivery(&mut stuck).await;
    let seen = collect(&mut rx, usize::try_from(TOTAL - 1).expect("fits")).await;
    let mut seqs: Vec<u64> = seen.iter().map(|s| s.1).collect();
    seqs.push(body_seq(&held.data));
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..TOTAL).collect::<Vec<_>>(),
        "every message exactly once"
    );
    assert!(
        seen.iter().any(|s| s.0 == 0) && seen.iter().any(|s| s.0 == 1),
        "both healthy consumers worked"
    );
    // prefetch 1 and no ack: the stuck consumer never gets a second message.
    assert_no_delivery(&mut stuck, Duration::from_millis(200)).await;
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn unacked_messages_of_a_closed_channel_are_redelivered_first() {
    let broker = TestBroker::start().await;
    let (_pconn, pch) = open(&broker).await;
    within(
        "declare",
        pch.queue_declare(
            QUEUE.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");
    publish(&pch, 0..5).await;

    let (_aconn, ach) = open(&broker).await;
    let mut a = consumer(&ach, 5).await;
    let mut held = Vec::new();
    for n in 0..5 {
        let d = next_delivery(&mut a).await;
        assert_eq!(body_seq(&d.data), n);
        held.push(d);
    }
    // Newer messages wait in the queue behind A's full prefetch window.
    publish(&pch, 5..10).await;
    within("ack", held[0].ack(BasicAckOptions::default()))
        .await
        .expect("ack 0");
    let d5 = next_delivery(&mut a).await; // the freed slot takes message 5
    assert_eq!(body_seq(&d5.data), 5);
    within("channel.close", ach.close(200, "leaving".into()))
        .await
        .expect("close A's channel");

    let (_bconn, bch) = open(&broker).await;
    let mut b = consumer(&bch, 100).await;
    let mut got = Vec::new();
    for _ in 1..10 {
        let d = next_delivery(&mut b).await;
        got.push((body_seq(&d.data), d.redelivered));
        within("ack", d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    let expected: Vec<(u64, bool)> = (1..10).map(|n| (n, n <= 5)).collect();
    assert_eq!(
        got, expected,
        "requeued messages (redelivered) must come first, in order, then the newer ones"
    );
    assert_no_delivery(&mut b, Duration::from_millis(200)).await;
}
