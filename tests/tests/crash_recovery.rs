//! Crash safety: the broker runs as a child process and is SIGKILLed in the
//! middle of a stream of persistent, confirmed publishes while a consumer
//! acks some deliveries and holds others. After each restart on the same
//! data directory, every message that was confirmed and not acked must be
//! there again; messages delivered before the crash must come back flagged
//! redelivered. Duplicates (acks the broker never persisted) are allowed and
//! reported.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use tests::child::ChildBroker;
use tests::{body_seq, connect_with_retry, seq_body, within};
use tokio::sync::{mpsc, watch};

const QUEUE: &str = "crash-durable";

/// What the clients know for sure. Guarded by a std mutex: it is only held
/// for set updates, never across an await.
#[derive(Default)]
struct Ledger {
    /// Publisher confirms received (the broker promised durability).
    confirmed: BTreeSet<u64>,
    /// Deliveries we acked or took with no-ack (the broker may forget them).
    removed: BTreeSet<u64>,
    /// Ever handed to a client (basic.deliver or get-ok).
    delivered: BTreeSet<u64>,
}

/// The counters a round prints.
#[derive(Debug, Default)]
struct Recovery {
    found: usize,
    duplicates: usize,
    unconfirmed_survivors: usize,
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn declare(ch: &Channel, passive: bool) -> lapin::Result<lapin::Queue> {
    within(
        "queue.declare",
        ch.queue_declare(
            QUEUE.into(),
            QueueDeclareOptions {
                durable: true,
                passive,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
}

/// Takes everything out of the recovered queue and checks it against the
/// ledger; returns counts, panics on a lost message or a missing flag.
async fn drain_and_verify(conn: &Connection, ledger: &Mutex<Ledger>, round: usize) -> Recovery {
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("open channel");
    declare(&ch, true)
        .await
        .expect("durable queue survives the crash");
    let mut found = BTreeSet::new();
    let mut rec = Recovery::default();
    let mut not_flagged = Vec::new();
    loop {
        let got = within(
            "basic.get",
            ch.basic_get(QUEUE.into(), BasicGetOptions { no_ack: true }),
        )
        .await
        .expect("basic.get");
        let Some(msg) = got else { break };
        let seq = body_seq(&msg.delivery.data);
        let mut l = lock(ledger);
        if l.delivered.contains(&seq) && !msg.delivery.redelivered {
            not_flagged.push(seq);
        }
        if l.removed.contains(&seq) || !found.insert(seq) {
            rec.duplicates += 1;
        } else if !l.confirmed.contains(&seq) {
            rec.unconfirmed_survivors += 1;
        }
        l.delivered.insert(seq);
        l.removed.insert(seq);
    }
    rec.found = found.len();
    let l = lock(ledger);
    let lost: Vec<u64> = l
        .confirmed
        .iter()
        .filter(|s| !l.removed.contains(s))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "round {round}: {} confirmed, unacked messages lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert!(
        not_flagged.is_empty(),
        "round {round}: delivered before the crash but redelivered=false: {not_flagged:?}"
    );
    rec
}

/// Publishes persistent messages from `next` on, forever, handing each
/// confirm to a second task so confirms are awaited while publishing goes on.
fn spawn_publisher(
    conn: Connection,
    next: u64,
    ledger: Arc<Mutex<Ledger>>,
    confirmed: watch::Sender<usize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(ch) = conn.create_channel().await else {
            return;
        };
        if ch
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .is_err()
        {
            return;
        }
        let (tx, mut rx) = mpsc::channel(64); // window of unconfirmed publishes
        let waiter = tokio::spawn(async move {
            let mut count = 0;
            while let Some((seq, confirm)) = rx.recv().await {
                let confirm: lapin::PublisherConfirm = confirm;
                match confirm.await {
                    Ok(c) if c.is_ack() => {
                        lock(&ledger).confirmed.insert(seq);
                        count += 1;
                        confirmed.send_replace(count);
                    }
                    _ => return,
                }
            }
        });
        let props = BasicProperties::default().with_delivery_mode(2);
        for seq in next.. {
            let Ok(confirm) = ch
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    &seq_body(seq),
                    props.clone(),
                )
                .await
            else {
                break;
            };
            if tx.send((seq, confirm)).await.is_err() {
                break;
            }
        }
        drop(tx);
        let _ = waiter.await;
        drop(conn);
    })
}

/// Consumes, acking most deliveries and holding every fifth (up to 40).
fn spawn_consumer(conn: Connection, ledger: Arc<Mutex<Ledger>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(ch) = conn.create_channel().await else {
            return;
        };
        if ch.basic_qos(100, BasicQosOptions::default()).await.is_err() {
            return;
        }
        let Ok(mut consumer) = ch
            .basic_consume(
                QUEUE.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
        else {
            return;
        };
        let mut held = Vec::new();
        while let Some(Ok(d)) = consumer.next().await {
            let seq = body_seq(&d.data);
            lock(&ledger).delivered.insert(seq);
            if seq.is_multiple_of(5) && held.len() < 40 {
                held.push(d);
                continue;
            }
            // Recorded before sending: once sent, the broker may drop it.
            lock(&ledger).removed.insert(seq);
            if d.ack(BasicAckOptions::default()).await.is_err() {
                break;
            }
        }
        drop(held);
        drop(conn);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_repeated_sigkill() {
    let dir = tempfile::Builder::new()
        .prefix("broker-crash-")
        .tempdir()
        .expect("temp dir");
    let mut broker = tokio::task::block_in_place(|| {
        ChildBroker::spawn(env!("CARGO_BIN_EXE_test-broker"), dir.path())
    })
    .expect("start child broker");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let patience = Duration::from_secs(10);
    {
        let conn = connect_with_retry(broker.addr(), patience)
            .await
            .expect("connect");
        let ch = within("channel.open", conn.create_channel())
            .await
            .expect("open channel");
        declare(&ch, false).await.expect("declare durable queue");
    }

    let mut next_seq = 0;
    // Kill after this many confirms of the round: varied, including "early".
    for (round, kill_after) in [300usize, 40, 900, 150].into_iter().enumerate() {
        let (count_tx, mut count_rx) = watch::channel(0);
        let pconn = connect_with_retry(broker.addr(), patience)
            .await
            .expect("publisher connects");
        let cconn = connect_with_retry(broker.addr(), patience)
            .await
            .expect("consumer connects");
        let consumer = spawn_consumer(cconn, ledger.clone());
        let publisher = spawn_publisher(pconn, next_seq, ledger.clone(), count_tx);
        within(
            &format!("{kill_after} confirms in round {round}"),
            count_rx.wait_for(|n| *n >= kill_after),
        )
        .await
        .expect("publisher alive");

        tokio::task::block_in_place(|| broker.kill9()).expect("SIGKILL");
        publisher.abort();
        consumer.abort();
        let _ = publisher.await;
        let _ = consumer.await;
        tokio::task::block_in_place(|| broker.restart()).expect("restart after SIGKILL");

        let conn = connect_with_retry(broker.addr(), patience)
            .await
            .expect("connect after restart");
        let rec = drain_and_verify(&conn, &ledger, round).await;
        let l = lock(&ledger);
        next_seq = l
            .delivered
            .iter()
            .chain(l.confirmed.iter())
            .max()
            .map_or(0, |m| m + 1)
            + 100_000;
        eprintln!(
            "round {round}: killed after {kill_after} confirms; total confirmed {}, removed {}; recovered {} (+{} duplicates, {} unconfirmed survivors)",
            l.confirmed.len(),
            l.removed.len(),
            rec.found,
            rec.duplicates,
            rec.unconfirmed_survivors
        );
    }

    let status = tokio::task::block_in_place(|| broker.terminate()).expect("SIGTERM");
    assert!(
        status.success(),
        "broker must exit cleanly on SIGTERM, got {status}"
    );
}
