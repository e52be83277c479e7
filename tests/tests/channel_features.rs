//! Channel-level features through lapin: transactions (publishes and acks
//! held until commit), tx/confirm mode conflicts, basic.recover, channel-wide
//! prefetch (basic.qos global), basic.cancel, consumer cancel notifications,
//! auto-delete queues, exchange errors (if-unused, passive, internal, unknown
//! or changed type), channel.flow, basic.get no-ack, and messages larger than
//! frame_max.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use protocol_amqp::{BasicGet, Frame, Method, ShortStr};
use tests::amqp::{
    ack, bind_queue, cancel, confirm_channel, consume, declare_queue, declare_queue_with,
    fill_queue, open_channel, passive_declare, publish_seq,
};
use tests::raw::RawClient;
use tests::{
    TestBroker, body_seq, get_all, next_delivery, next_error_event, publish_confirmed, reply_code,
    seq_body, within,
};

/// Sends a publish without waiting for anything (for non-confirm channels).
async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    within(
        "basic.publish",
        ch.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        ),
    )
    .await
    .expect("basic.publish");
}

/// Asserts that `err` is the broker closing the channel (not the
/// connection) with `code`.
fn assert_channel_error(err: &lapin::Error, code: u16) {
    assert_eq!(reply_code(err), Some(code), "{err}");
    assert!(
        !err.is_amqp_hard_error(),
        "{code} is a channel error: {err}"
    );
}

fn seqs(bodies: &[Vec<u8>]) -> Vec<u64> {
    bodies.iter().map(|b| body_seq(b)).collect()
}

async fn declare_exchange(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
) -> lapin::Result<()> {
    within(
        "exchange.declare",
        ch.exchange_declare(name.into(), kind, options, FieldTable::default()),
    )
    .await
}

#[tokio::test]
async fn tx_rollback_discards_publishes_and_commit_delivers_them() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    declare_queue(&ch, "txq").await;
    within("tx.select", ch.tx_select())
        .await
        .expect("tx.select");

    publish(&ch, "", "txq", &seq_body(1)).await;
    // Synchronous method on the same channel: the publish has been handled.
    let q = passive_declare(&ch, "txq").await.expect("declare");
    assert_eq!(q.message_count(), 0, "an uncommitted publish must be held");
    within("tx.rollback", ch.tx_rollback())
        .await
        .expect("tx.rollback");

    publish(&ch, "", "txq", &seq_body(2)).await;
    publish(&ch, "", "txq", &seq_body(3)).await;
    within("tx.commit", ch.tx_commit())
        .await
        .expect("tx.commit");
    // The channel stays transactional: this one is never committed.
    publish(&ch, "", "txq", &seq_body(4)).await;

    let other = open_channel(&conn).await;
    assert_eq!(
        seqs(&get_all(&other, "txq").await),
        vec![2, 3],
        "only the committed publishes may reach the queue"
    );
}

#[tokio::test]
async fn acks_in_a_transaction_take_effect_only_at_commit() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let setup = confirm_channel(&conn).await;
    fill_queue(&setup, "txacks", 1..3).await;

    let ch = open_channel(&conn).await;
    within("tx.select", ch.tx_select())
        .await
        .expect("tx.select");
    let get = |ch: Channel| async move {
        within(
            "basic.get",
            ch.basic_get("txacks".into(), BasicGetOptions { no_ack: false }),
        )
        .await
        .expect("basic.get")
        .expect("a message")
    };
    // Message 1: acked and committed.
    let m1 = get(ch.clone()).await;
    assert_eq!(body_seq(&m1.delivery.data), 1);
    within(
        "basic.ack",
        ch.basic_ack(m1.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("ack 1");
    within("tx.commit", ch.tx_commit())
        .await
        .expect("tx.commit");
    // Message 2: acked but never committed.
    let m2 = get(ch.clone()).await;
    assert_eq!(body_seq(&m2.delivery.data), 2);
    within(
        "basic.ack",
        ch.basic_ack(m2.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("ack 2");
    within(
        "channel.close",
        ch.close(200, "closing without commit".into()),
    )
    .await
    .expect("channel.close");

    // Closing the channel requeued message 2: its ack was never committed.
    let msg = within(
        "basic.get",
        setup.basic_get("txacks".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
    .expect("message 2 must be back in the queue");
    assert_eq!(body_seq(&msg.delivery.data), 2);
    assert!(
        msg.delivery.redelivered,
        "requeued message must be redelivered"
    );
    assert!(
        get_all(&setup, "txacks").await.is_empty(),
        "message 1's committed ack must have removed it"
    );
}

#[tokio::test]
async fn tx_commit_and_rollback_on_a_non_tx_channel_are_406() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    let err = within("tx.commit", ch.tx_commit())
        .await
        .expect_err("tx.commit without tx.select");
    assert_channel_error(&err, 406);
    let ch = open_channel(&conn).await;
    let err = within("tx.rollback", ch.tx_rollback())
        .await
        .expect_err("tx.rollback without tx.select");
    assert_eq!(reply_code(&err), Some(406), "{err}");
    // The connection survives.
    declare_queue(&open_channel(&conn).await, "still-fine").await;
}

#[tokio::test]
async fn confirm_select_on_a_tx_channel_is_406() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    within("tx.select", ch.tx_select())
        .await
        .expect("tx.select");
    let err = within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect_err("confirm.select on a tx channel");
    assert_channel_error(&err, 406);
    declare_queue(&open_channel(&conn).await, "still-fine").await;
}

#[tokio::test]
async fn basic_recover_redelivers_unacked_messages_flagged_redelivered() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let setup = confirm_channel(&conn).await;
    fill_queue(&setup, "recover", 0..2).await;

    let ch = open_channel(&conn).await;
    let mut consumer = consume(&ch, "recover").await;
    let first: Vec<Delivery> = vec![
        next_delivery(&mut consumer).await,
        next_delivery(&mut consumer).await,
    ];
    assert!(first.iter().all(|d| !d.redelivered));
    within(
        "basic.recover",
        ch.basic_recover(BasicRecoverOptions { requeue: true }),
    )
    .await
    .expect("basic.recover");
    let again = vec![
        next_delivery(&mut consumer).await,
        next_delivery(&mut consumer).await,
    ];
    let mut bodies: Vec<u64> = again.iter().map(|d| body_seq(&d.data)).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, vec![0, 1], "both unacked messages come back");
    assert!(
        again.iter().all(|d| d.redelivered),
        "recovered messages must be flagged redelivered"
    );
    for d in &again {
        ack(d).await;
    }
    // Acks are asynchronous; a synchronous method on the same channel
    // orders the check after them.
    cancel(&ch, &consumer).await;
    assert!(get_all(&setup, "recover").await.is_empty());
}

type Merged = Pin<Box<dyn Stream<Item = lapin::Result<Delivery>> + Send>>;

async fn next_merged(stream: &mut Merged) -> Delivery {
    match within("a delivery", stream.next()).await {
        Some(Ok(d)) => d,
        Some(Err(e)) => panic!("consumer failed: {e}"),
        None => panic!("consumers ended"),
    }
}

async fn assert_merged_quiet(stream: &mut Merged, quiet: Duration) {
    if let Ok(Some(item)) = tokio::time::timeout(quiet, stream.next()).await {
        panic!(
            "unexpected delivery beyond the channel's prefetch: {:?}",
            item.map(|d| String::from_utf8_lossy(&d.data).to_string())
        );
    }
}

/// Messages ready (not delivered) in `queues`, together.
async fn ready_count(ch: &Channel, queues: &[&str]) -> u32 {
    let mut ready = 0;
    for q in queues {
        ready += passive_declare(ch, q).await.expect(q).message_count();
    }
    ready
}

#[tokio::test]
async fn global_qos_is_shared_by_the_channels_consumers() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let setup = confirm_channel(&conn).await;
    for q in ["qa", "qb"] {
        declare_queue(&setup, q).await;
        publish_seq(&setup, q, 0..4).await;
    }

    let ch = open_channel(&conn).await;
    within(
        "basic.qos",
        ch.basic_qos(3, BasicQosOptions { global: true }),
    )
    .await
    .expect("basic.qos global");
    let a = consume(&ch, "qa").await;
    let b = consume(&ch, "qb").await;
    let mut merged: Merged = Box::pin(futures_util::stream::select(a, b));

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next_merged(&mut merged).await);
    }
    assert_merged_quiet(&mut merged, Duration::from_millis(400)).await;
    let ready = ready_count(&setup, &["qa", "qb"]).await;
    assert_eq!(ready, 5, "exactly 3 of 8 messages may be out");

    let first = held.remove(0);
    ack(&first).await;
    held.push(next_merged(&mut merged).await);
    assert_merged_quiet(&mut merged, Duration::from_millis(400)).await;
    let ready = ready_count(&setup, &["qa", "qb"]).await;
    assert_eq!(ready, 4, "one ack frees exactly one delivery");
}

#[tokio::test]
async fn basic_cancel_stops_deliveries_and_leaves_the_rest_queued() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let setup = confirm_channel(&conn).await;
    fill_queue(&setup, "cancelled", 0..3).await;

    let ch = open_channel(&conn).await;
    within("basic.qos", ch.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = consume(&ch, "cancelled").await;
    let d0 = next_delivery(&mut consumer).await;
    assert_eq!(body_seq(&d0.data), 0);
    cancel(&ch, &consumer).await;
    // Acking after the cancel is allowed, and frees credit that a
    // still-registered consumer would use.
    ack(&d0).await;
    publish_seq(&setup, "cancelled", 3..4).await;
    assert!(
        within("consumer end", consumer.next()).await.is_none(),
        "the cancelled consumer's stream must end without more deliveries"
    );
    assert_eq!(
        seqs(&get_all(&setup, "cancelled").await),
        vec![1, 2, 3],
        "undelivered messages stay in the queue"
    );
}

#[tokio::test]
async fn deleting_a_consumed_queue_sends_a_cancel_notification() {
    let broker = TestBroker::start().await;
    let consumer_conn = broker.connect().await;
    let ch = open_channel(&consumer_conn).await;
    declare_queue(&ch, "doomed").await;
    let mut consumer = consume(&ch, "doomed").await;

    let other = broker.connect().await;
    within(
        "queue.delete",
        open_channel(&other)
            .await
            .queue_delete("doomed".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete from another connection");

    // lapin ends the consumer's stream when the broker sends basic.cancel.
    match within("the broker's basic.cancel", consumer.next()).await {
        None => {}
        Some(Ok(d)) => panic!("unexpected delivery {:?}", d.data),
        Some(Err(e)) => panic!("consumer failed instead of being cancelled: {e}"),
    }
    // It was a cancel, not a channel error: the channel still works.
    assert!(ch.status().connected(), "channel must stay open");
    declare_queue(&ch, "after-cancel").await;
}

#[tokio::test]
async fn auto_delete_queue_disappears_with_its_last_consumer() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    declare_queue_with(
        &ch,
        "ephemeral",
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
    )
    .await
    .expect("declare auto-delete queue");
    let c1 = consume(&ch, "ephemeral").await;
    let c2 = consume(&ch, "ephemeral").await;
    cancel(&ch, &c1).await;
    let q = passive_declare(&ch, "ephemeral")
        .await
        .expect("queue stays while a consumer is left");
    assert_eq!(q.consumer_count(), 1);
    cancel(&ch, &c2).await;
    let err = passive_declare(&ch, "ephemeral")
        .await
        .expect_err("auto-delete queue must be gone after its last consumer");
    assert_eq!(reply_code(&err), Some(404), "{err}");

    // Tightest timing: cancel with nowait and redeclare at once on the same
    // channel. The redeclare must create a new, working queue, not answer
    // declare-ok for the one being deleted (whose messages would be lost).
    let ch = confirm_channel(&conn).await;
    let declare_auto_delete = || {
        ch.queue_declare(
            "ephemeral".into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
    };
    within("queue.declare", declare_auto_delete())
        .await
        .expect("declare again");
    let c = consume(&ch, "ephemeral").await;
    within(
        "basic.cancel nowait",
        ch.basic_cancel(c.tag(), BasicCancelOptions { nowait: true }),
    )
    .await
    .expect("cancel");
    let q = within("queue.declare", declare_auto_delete())
        .await
        .expect("redeclare right after the last cancel");
    assert_eq!(q.consumer_count(), 0);
    publish_seq(&ch, "ephemeral", 5..6).await;
    assert_eq!(
        seqs(&get_all(&ch, "ephemeral").await),
        vec![5],
        "the redeclared queue must be a live queue"
    );
}

#[tokio::test]
async fn exchange_delete_if_unused_on_a_bound_exchange_is_406() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    declare_exchange(
        &ch,
        "bound.x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
    )
    .await
    .expect("exchange.declare");
    declare_queue(&ch, "bound.q").await;
    bind_queue(&ch, "bound.q", "bound.x", "k", FieldTable::default()).await;
    let err = within(
        "exchange.delete",
        ch.exchange_delete(
            "bound.x".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect_err("bound exchange is in use");
    assert_eq!(reply_code(&err), Some(406), "{err}");
    // It still exists and still routes.
    let ch = confirm_channel(&conn).await;
    let c = publish_confirmed(
        &ch,
        "bound.x",
        "k",
        BasicPublishOptions::default(),
        &seq_body(7),
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());
    assert_eq!(seqs(&get_all(&ch, "bound.q").await), vec![7]);
}

#[tokio::test]
async fn passive_declare_of_a_missing_exchange_is_404() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    let err = declare_exchange(
        &ch,
        "no.such.exchange",
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
    )
    .await
    .expect_err("missing exchange");
    assert_channel_error(&err, 404);
    // Passive declare of an existing exchange succeeds.
    declare_exchange(
        &open_channel(&conn).await,
        "amq.direct",
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
    )
    .await
    .expect("amq.direct exists");
}

#[tokio::test]
async fn publish_to_an_internal_exchange_is_403() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let mut events = Box::pin(conn.events_listener());
    let ch = open_channel(&conn).await;
    declare_exchange(
        &ch,
        "inside",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..Default::default()
        },
    )
    .await
    .expect("declare internal exchange");
    publish(&ch, "inside", "", b"m").await;
    let err = next_error_event(&mut events).await;
    assert_channel_error(&err, 403);
    declare_queue(&open_channel(&conn).await, "still-fine").await;
}

#[tokio::test]
async fn declaring_an_exchange_of_unknown_type_is_a_503_connection_error() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    let err = declare_exchange(
        &ch,
        "weird",
        ExchangeKind::Custom("x-no-such-type".into()),
        ExchangeDeclareOptions::default(),
    )
    .await
    .expect_err("unknown exchange type");
    assert_eq!(reply_code(&err), Some(503), "{err}");
    assert!(err.is_amqp_hard_error(), "503 is a connection error: {err}");
    // Nothing was created, and the broker serves new connections.
    let conn = broker.connect().await;
    let err = declare_exchange(
        &open_channel(&conn).await,
        "weird",
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
    )
    .await
    .expect_err("the exchange must not exist");
    assert_eq!(reply_code(&err), Some(404), "{err}");
}

#[tokio::test]
async fn redeclaring_an_exchange_with_another_type_is_406() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = open_channel(&conn).await;
    declare_exchange(
        &ch,
        "typed",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
    )
    .await
    .expect("declare direct");
    let err = declare_exchange(
        &ch,
        "typed",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
    )
    .await
    .expect_err("type change");
    assert_channel_error(&err, 406);
    // The original declaration still matches.
    declare_exchange(
        &open_channel(&conn).await,
        "typed",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
    )
    .await
    .expect("equivalent redeclare");
}

#[tokio::test]
async fn channel_flow_active_is_acknowledged() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = confirm_channel(&conn).await;
    let active = within(
        "channel.flow",
        ch.channel_flow(ChannelFlowOptions { active: true }),
    )
    .await
    .expect("channel.flow");
    assert!(active, "flow-ok must echo active=true");
    fill_queue(&ch, "flowing", 0..1).await;
    assert_eq!(seqs(&get_all(&ch, "flowing").await), vec![0]);
}

#[tokio::test]
async fn basic_get_with_no_ack_leaves_nothing_to_ack() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let mut events = Box::pin(conn.events_listener());
    let setup = confirm_channel(&conn).await;
    fill_queue(&setup, "noack", 0..2).await;

    let ch = open_channel(&conn).await;
    let msg = within(
        "basic.get",
        ch.basic_get("noack".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
    .expect("a message");
    assert_eq!(body_seq(&msg.delivery.data), 0);
    assert_eq!(msg.message_count, 1, "one message left");
    // The tag of a no-ack get is not outstanding: acking it is an error.
    within(
        "basic.ack",
        ch.basic_ack(msg.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("send ack");
    let err = next_error_event(&mut events).await;
    assert_eq!(reply_code(&err), Some(406), "{err}");
    // The channel closed, and the message did not come back: it was settled
    // when it was handed out.
    assert_eq!(seqs(&get_all(&setup, "noack").await), vec![1]);
}

#[tokio::test]
async fn message_larger_than_frame_max_arrives_intact() {
    const FRAME_MAX: u32 = 131_072;
    let broker = TestBroker::start_with(|c| c.frame_max = FRAME_MAX).await;
    let conn = broker.connect().await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "big").await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // lapin splits the body into frame_max-sized body frames.
    let c = publish_confirmed(
        &ch,
        "",
        "big",
        BasicPublishOptions::default(),
        &body,
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());

    // Through lapin: the whole body comes back.
    let got = get_all(&ch, "big").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), body.len());
    assert!(got[0] == body, "body changed on the way");

    // Frame by frame: the broker splits it within the negotiated frame_max.
    let c = publish_confirmed(
        &ch,
        "",
        "big",
        BasicPublishOptions::default(),
        &body,
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());
    let (mut raw, tune) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    assert_eq!(tune.frame_max, FRAME_MAX);
    raw.open_channel(1).await.expect("channel.open");
    raw.send_method(
        1,
        BasicGet {
            queue: ShortStr::from_static("big"),
            no_ack: true,
        },
    )
    .await
    .expect("basic.get");
    match raw.recv_frame().await.expect("get-ok") {
        Some(Frame::Method {
            channel: 1,
            method: Method::BasicGetOk(_),
        }) => {}
        other => panic!("expected basic.get-ok, got {other:?}"),
    }
    let size = match raw.recv_frame().await.expect("content header") {
        Some(Frame::Header { body_size, .. }) => body_size,
        other => panic!("expected a content header, got {other:?}"),
    };
    assert_eq!(size, body.len() as u64);
    let mut got = Vec::new();
    let mut frames = 0;
    while (got.len() as u64) < size {
        match raw.recv_frame().await.expect("body frame") {
            Some(Frame::Body {
                channel: 1,
                payload,
            }) => {
                assert!(
                    payload.len() <= (FRAME_MAX - 8) as usize,
                    "body frame of {} bytes exceeds frame_max {FRAME_MAX}",
                    payload.len()
                );
                got.extend_from_slice(&payload);
                frames += 1;
            }
            other => panic!("expected a body frame, got {other:?}"),
        }
    }
    assert!(frames >= 3, "300 KB in {frames} frames of at most 128 KiB?");
    assert!(got == body, "body changed on the way");
}
