//! Backpressure: above the memory high watermark the broker stops reading publishers (and
//! tells AMQP clients with connection.blocked) until consumers bring queued bytes back down;
//! nothing is lost on the way.

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Event};
use tests::{TestBroker, within};

const MESSAGES: usize = 100;
const BODY: usize = 2048;

async fn next_event(
    events: &mut (impl futures_util::Stream<Item = Event> + Unpin),
    want: fn(&Event) -> bool,
) {
    within("a connection event", async {
        loop {
            match events.next().await {
                Some(e) if want(&e) => return,
                Some(_) => continue,
                None => panic!("connection event stream ended"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn publishers_are_blocked_above_the_watermark_and_resume_when_drained() {
    let broker = TestBroker::start_with(|c| c.memory_high_watermark = Some(64 * 1024)).await;
    let publisher = broker.connect().await;
    let mut events = publisher.events_listener();
    let ch = within("channel", publisher.create_channel())
        .await
        .expect("channel");
    within(
        "declare",
        ch.queue_declare(
            "bp".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");
    within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("select");

    // Publishing stalls once the broker stops reading, so it runs in its own task.
    let publishing = tokio::spawn(async move {
        let mut confirms = Vec::new();
        for _ in 0..MESSAGES {
            let confirm = ch
                .basic_publish(
                    "".into(),
                    "bp".into(),
                    BasicPublishOptions::default(),
                    &[7u8; BODY],
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            confirms.push(confirm);
        }
        for c in confirms {
            assert!(c.await.expect("confirm").is_ack());
        }
        ch
    });

    next_event(&mut events, |e| matches!(e, Event::ConnectionBlocked(_))).await;
    let consumer = broker.connect().await;
    let cch = within("channel", consumer.create_channel())
        .await
        .expect("channel");
    let held = within(
        "passive declare",
        cch.queue_declare(
            "bp".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("passive declare")
    .message_count();
    assert!(
        (held as usize) < MESSAGES,
        "the broker must stop taking messages while blocked, but the queue holds {held}"
    );

    // Draining the queue clears the alarm; the publisher is told and finishes.
    let mut got = 0;
    let mut deliveries = within(
        "consume",
        cch.basic_consume(
            "bp".into(),
            "drain".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("consume");
    let mut unblocked = false;
    while got < MESSAGES {
        tokio::select! {
            d = deliveries.next() => {
                let d = d.expect("delivery stream open").expect("delivery");
                assert_eq!(d.data.len(), BODY);
                got += 1;
            }
            _ = next_event(&mut events, |e| matches!(e, Event::ConnectionUnblocked)), if !unblocked => unblocked = true,
        }
    }
    if !unblocked {
        next_event(&mut events, |e| matches!(e, Event::ConnectionUnblocked)).await;
    }
    within("publisher finishes", publishing)
        .await
        .expect("publisher task");
    assert_eq!(got, MESSAGES, "every message arrives exactly once");
}
