//! MQTT basics with rumqttc against an in-process broker: QoS 0/1/2 in both
//! protocol versions, per-subscription QoS downgrade, several filters per
//! SUBSCRIBE, wildcards and `$` topics, unsubscribe, ordering, retained
//! messages, and the 5.0 features (retain handling, retain-as-published,
//! no-local, subscription identifiers, properties, request/response, topic
//! aliases, assigned client identifiers).
//!
//! Absence of a delivery is checked with a sentinel where possible: the
//! subscriber also listens on a topic published to *after* the one that must
//! not arrive, and since one publisher's messages are delivered in order, the
//! sentinel coming first proves the other message was not delivered.

use std::time::Duration;

use rumqttc::QoS;
use tests::TestBroker;
use tests::mqtt::{V4Client, V5Client, V5QoS, v4_options, v5_options, v5p};

fn text(payload: &[u8]) -> &str {
    std::str::from_utf8(payload).expect("UTF-8 payload")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_qos_0_1_2_round_trip() {
    let broker = TestBroker::start().await;
    let (mut sub, ack) = V4Client::connect(v4_options(broker.mqtt_addr(), "v4-sub")).await;
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    assert!(!ack.session_present);
    assert_eq!(
        sub.subscribe("q/t", QoS::ExactlyOnce).await,
        QoS::ExactlyOnce
    );
    let (mut publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "v4-pub")).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        publ.publish("q/t", qos, false, format!("{qos:?}")).await;
        let got = sub.next_publish().await;
        assert_eq!(got.topic, "q/t");
        assert_eq!(text(&got.payload), format!("{qos:?}"));
        assert_eq!(got.qos, qos, "delivered at the publisher's QoS");
        assert!(!got.retain);
    }
    sub.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_qos_0_1_2_round_trip() {
    let broker = TestBroker::start().await;
    let (mut sub, ack) = V5Client::connect(v5_options(broker.mqtt_addr(), "v5-sub")).await;
    assert_eq!(ack.code, v5p::ConnectReturnCode::Success);
    assert_eq!(
        sub.subscribe("q/t", V5QoS::ExactlyOnce).await,
        V5QoS::ExactlyOnce
    );
    let (mut publ, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "v5-pub")).await;
    for qos in [V5QoS::AtMostOnce, V5QoS::AtLeastOnce, V5QoS::ExactlyOnce] {
        publ.publish("q/t", qos, false, format!("{qos:?}")).await;
        let got = sub.next_publish().await;
        assert_eq!(&got.topic[..], b"q/t");
        assert_eq!(text(&got.payload), format!("{qos:?}"));
        assert_eq!(got.qos, qos);
    }
    sub.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_qos_caps_delivery_qos() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "cap-sub")).await;
    sub.subscribe("cap/0", QoS::AtMostOnce).await;
    sub.subscribe("cap/1", QoS::AtLeastOnce).await;
    let (mut publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "cap-pub")).await;
    publ.publish("cap/0", QoS::AtLeastOnce, false, "a").await;
    let got = sub.next_publish().await;
    assert_eq!((got.topic.as_str(), got.qos), ("cap/0", QoS::AtMostOnce));
    publ.publish("cap/1", QoS::ExactlyOnce, false, "b").await;
    let got = sub.next_publish().await;
    assert_eq!((got.topic.as_str(), got.qos), ("cap/1", QoS::AtLeastOnce));
    // A subscription at a higher QoS never upgrades a message.
    publ.publish("cap/1", QoS::AtMostOnce, false, "c").await;
    let got = sub.next_publish().await;
    assert_eq!((got.topic.as_str(), got.qos), ("cap/1", QoS::AtMostOnce));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_filters_and_wildcards() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "wild-sub")).await;
    let codes = sub
        .subscribe_many(&[
            ("w/+/x", QoS::AtLeastOnce),
            ("w/a/#", QoS::AtMostOnce),
            ("exact", QoS::ExactlyOnce),
        ])
        .await;
    assert_eq!(
        codes,
        vec![
            rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce),
            rumqttc::SubscribeReasonCode::Success(QoS::AtMostOnce),
            rumqttc::SubscribeReasonCode::Success(QoS::ExactlyOnce),
        ]
    );
    let (mut publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "wild-pub")).await;
    for topic in [
        "w/b/x",   // w/+/x
        "w/b/y",   // nothing
        "w/b/x/z", // nothing: + is one level
        "w/a",     // w/a/# matches its parent level
        "w/a/b/c", // w/a/#
        "w/a/x",   // both w/+/x and w/a/#: one copy, at the higher QoS
        "exact",
    ] {
        publ.publish(topic, QoS::ExactlyOnce, false, topic).await;
    }
    let mut got = Vec::new();
    for _ in 0..5 {
        let p = sub.next_publish().await;
        got.push((p.topic, p.qos));
    }
    assert_eq!(
        got,
        vec![
            ("w/b/x".to_string(), QoS::AtLeastOnce),
            ("w/a".to_string(), QoS::AtMostOnce),
            ("w/a/b/c".to_string(), QoS::AtMostOnce),
            ("w/a/x".to_string(), QoS::AtLeastOnce),
            ("exact".to_string(), QoS::ExactlyOnce),
        ]
    );
    sub.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = TestBroker::start().await;
    let (mut all, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "all")).await;
    all.subscribe("#", QoS::AtLeastOnce).await;
    all.subscribe("+/status", QoS::AtLeastOnce).await;
    let (mut dollar, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "dollar")).await;
    dollar.subscribe("$app/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "dpub")).await;
    publ.publish("$app/status", QoS::AtLeastOnce, false, "hidden")
        .await;
    publ.publish("plain/status", QoS::AtLeastOnce, false, "visible")
        .await;
    let got = all.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload)),
        ("plain/status", "visible"),
        "`#` and `+/status` must not match a topic starting with `$`"
    );
    let got = dollar.next_publish().await;
    assert_eq!(got.topic, "$app/status");
    all.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "unsub")).await;
    sub.subscribe("u/t", QoS::AtLeastOnce).await;
    sub.subscribe("u/sentinel", QoS::AtLeastOnce).await;
    let (mut publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "unsub-pub")).await;
    publ.publish("u/t", QoS::AtLeastOnce, false, "before").await;
    assert_eq!(text(&sub.next_publish().await.payload), "before");
    sub.unsubscribe("u/t").await;
    publ.publish("u/t", QoS::AtLeastOnce, false, "after").await;
    publ.publish("u/sentinel", QoS::AtLeastOnce, false, "sentinel")
        .await;
    let got = sub.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload)),
        ("u/sentinel", "sentinel"),
        "a message on an unsubscribed topic was delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_unsuback_reports_unknown_filters() {
    let broker = TestBroker::start().await;
    let (mut c, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "unsuback")).await;
    c.subscribe("known", V5QoS::AtLeastOnce).await;
    assert_eq!(
        c.unsubscribe("known").await,
        vec![v5p::UnsubAckReason::Success]
    );
    assert_eq!(
        c.unsubscribe("never/subscribed").await,
        vec![v5p::UnsubAckReason::NoSubscriptionExisted],
        "UNSUBACK 0x11 for a filter with no subscription"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_messages_arrive_in_order() {
    const N: u64 = 200;
    let broker = TestBroker::start().await;
    let (mut sub, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "order-sub")).await;
    sub.subscribe("order", QoS::AtLeastOnce).await;
    let (publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "order-pub")).await;
    // Publish without waiting for each PUBACK, so many are in flight at once.
    for n in 0..N {
        tests::within(
            "publish request",
            publ.client
                .publish("order", QoS::AtLeastOnce, false, tests::seq_body(n)),
        )
        .await
        .expect("publish");
    }
    for n in 0..N {
        let p = sub.next_publish().await;
        assert_eq!(tests::body_seq(&p.payload), n, "out of order");
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }
    sub.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_delivered_replaced_and_deleted() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut publ, _) = V4Client::connect(v4_options(addr, "ret-pub")).await;
    publ.publish("r/a", QoS::AtLeastOnce, true, "one").await;

    // Delivered on subscribe, with RETAIN set, to an exact and a wildcard filter.
    for (id, filter) in [("ret-1", "r/a"), ("ret-2", "r/+"), ("ret-3", "#")] {
        let (mut sub, _) = V4Client::connect(v4_options(addr, id)).await;
        sub.subscribe(filter, QoS::AtLeastOnce).await;
        let got = sub.next_publish().await;
        assert_eq!(
            (got.topic.as_str(), text(&got.payload), got.retain),
            ("r/a", "one", true),
            "retained message for {filter}"
        );
    }

    // A live retained publish reaches existing subscribers without RETAIN (3.1.1).
    let (mut live, _) = V4Client::connect(v4_options(addr, "ret-live")).await;
    live.subscribe("r/a", QoS::AtLeastOnce).await;
    assert_eq!(text(&live.next_publish().await.payload), "one");
    publ.publish("r/a", QoS::AtLeastOnce, true, "two").await;
    let got = live.next_publish().await;
    assert_eq!((text(&got.payload), got.retain), ("two", false));

    // Replaced: a new subscriber gets only the latest.
    let (mut sub, _) = V4Client::connect(v4_options(addr, "ret-4")).await;
    sub.subscribe("r/a", QoS::AtLeastOnce).await;
    let got = sub.next_publish().await;
    assert_eq!((text(&got.payload), got.retain), ("two", true));
    drop(sub);

    // Deleted by an empty retained publish (which is itself forwarded).
    publ.publish("r/a", QoS::AtLeastOnce, true, "").await;
    let (mut sub, _) = V4Client::connect(v4_options(addr, "ret-5")).await;
    sub.subscribe("r/a", QoS::AtLeastOnce).await;
    publ.publish("r/a", QoS::AtLeastOnce, false, "live").await;
    let got = sub.next_publish().await;
    assert_eq!(
        (text(&got.payload), got.retain),
        ("live", false),
        "the retained message should have been deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_retain_handling_and_retain_as_published() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut publ, _) = V5Client::connect(v5_options(addr, "rh-pub")).await;
    publ.publish("rh/t", V5QoS::AtLeastOnce, true, "kept").await;

    let (mut sub, _) = V5Client::connect(v5_options(addr, "rh-sub")).await;
    let mut never = v5p::Filter::new("rh/t", V5QoS::AtLeastOnce);
    never.retain_forward_rule = v5p::RetainForwardRule::Never;
    let mut rap = v5p::Filter::new("rap/t", V5QoS::AtLeastOnce);
    rap.preserve_retain = true;
    rap.retain_forward_rule = v5p::RetainForwardRule::Never;
    let plain = v5p::Filter::new("plain/t", V5QoS::AtLeastOnce);
    let codes = sub.subscribe_with(vec![never, rap, plain], None).await;
    assert_eq!(codes.len(), 3);

    // Retain handling 2: the retained message is not sent; the first thing
    // to arrive is the live publish that follows the SUBSCRIBE.
    publ.publish("rh/t", V5QoS::AtLeastOnce, false, "live")
        .await;
    let got = sub.next_publish().await;
    assert_eq!(
        text(&got.payload),
        "live",
        "retain handling 2 sent the retained message"
    );

    // Retain as published keeps RETAIN on forwarded messages; without it, it is cleared.
    publ.publish("rap/t", V5QoS::AtLeastOnce, true, "r1").await;
    let got = sub.next_publish().await;
    assert_eq!((text(&got.payload), got.retain), ("r1", true));
    publ.publish("plain/t", V5QoS::AtLeastOnce, true, "r2")
        .await;
    let got = sub.next_publish().await;
    assert_eq!((text(&got.payload), got.retain), ("r2", false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_no_local() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut me, _) = V5Client::connect(v5_options(addr, "nl-me")).await;
    let mut f = v5p::Filter::new("nl/t", V5QoS::AtLeastOnce);
    f.nolocal = true;
    me.subscribe_with(vec![f], None).await;
    let (mut other, _) = V5Client::connect(v5_options(addr, "nl-other")).await;
    me.publish("nl/t", V5QoS::AtLeastOnce, false, "mine").await;
    other
        .publish("nl/t", V5QoS::AtLeastOnce, false, "theirs")
        .await;
    let got = me.next_publish().await;
    assert_eq!(
        text(&got.payload),
        "theirs",
        "no-local delivered our own publish"
    );
    me.assert_no_publish(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_subscription_identifiers() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut sub, _) = V5Client::connect(v5_options(addr, "sid")).await;
    for (filter, id) in [("sid/+", 7), ("sid/a", 9)] {
        let props = v5p::SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        let codes = sub
            .subscribe_with(
                vec![v5p::Filter::new(filter, V5QoS::AtLeastOnce)],
                Some(props),
            )
            .await;
        assert!(matches!(
            codes.as_slice(),
            [v5p::SubscribeReasonCode::Success(_)]
        ));
    }
    let (mut publ, _) = V5Client::connect(v5_options(addr, "sid-pub")).await;
    publ.publish("sid/a", V5QoS::AtLeastOnce, false, "both")
        .await;
    publ.publish("sid/b", V5QoS::AtLeastOnce, false, "one")
        .await;
    let ids = |p: &v5p::Publish| {
        let mut ids = p
            .properties
            .as_ref()
            .map(|p| p.subscription_identifiers.clone())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    };
    let got = sub.next_publish().await;
    assert_eq!((text(&got.payload), ids(&got)), ("both", vec![7, 9]));
    let got = sub.next_publish().await;
    assert_eq!((text(&got.payload), ids(&got)), ("one", vec![7]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_properties_and_request_response() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut responder, _) = V5Client::connect(v5_options(addr, "responder")).await;
    responder.subscribe("svc/echo", V5QoS::AtLeastOnce).await;
    let (mut requester, _) = V5Client::connect(v5_options(addr, "requester")).await;
    requester
        .subscribe("reply/requester", V5QoS::AtLeastOnce)
        .await;

    let correlation = bytes::Bytes::from_static(b"\x00\xffreq-1");
    let request = v5p::PublishProperties {
        content_type: Some("application/json".into()),
        response_topic: Some("reply/requester".into()),
        correlation_data: Some(correlation.clone()),
        // Forwarded unaltered and in order [MQTT-3.3.2-17, 18]: a name given twice, and one
        // an AMQP header could not carry (`x-…` names are the broker's own there).
        user_properties: vec![
            ("k".into(), "v".into()),
            ("trace".into(), "abc".into()),
            ("k".into(), "v2".into()),
            ("x-hop".into(), "1".into()),
        ],
        ..Default::default()
    };
    requester
        .publish_with("svc/echo", V5QoS::AtLeastOnce, false, "{\"q\":1}", request)
        .await;

    let got = responder.next_publish().await;
    let props = got.properties.clone().expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.response_topic.as_deref(), Some("reply/requester"));
    assert_eq!(props.correlation_data.as_ref(), Some(&correlation));
    assert_eq!(
        props.user_properties,
        vec![
            ("k".to_string(), "v".to_string()),
            ("trace".into(), "abc".into()),
            ("k".into(), "v2".into()),
            ("x-hop".into(), "1".into()),
        ]
    );
    let response = v5p::PublishProperties {
        correlation_data: props.correlation_data.clone(),
        ..Default::default()
    };
    let topic = props.response_topic.expect("response topic");
    responder
        .publish_with(&topic, V5QoS::AtLeastOnce, false, "{\"a\":1}", response)
        .await;

    let got = requester.next_publish().await;
    assert_eq!(&got.topic[..], b"reply/requester");
    assert_eq!(text(&got.payload), "{\"a\":1}");
    assert_eq!(
        got.properties.and_then(|p| p.correlation_data),
        Some(correlation)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_topic_alias_from_client() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut sub, _) = V5Client::connect(v5_options(addr, "alias-sub")).await;
    sub.subscribe("alias/long/topic", V5QoS::AtLeastOnce).await;
    let (mut publ, ack) = V5Client::connect(v5_options(addr, "alias-pub")).await;
    let max = ack
        .properties
        .and_then(|p| p.topic_alias_max)
        .expect("CONNACK advertises a Topic Alias Maximum");
    assert!(max >= 1);
    let with_alias = || v5p::PublishProperties {
        topic_alias: Some(1),
        ..Default::default()
    };
    publ.publish_with(
        "alias/long/topic",
        V5QoS::AtLeastOnce,
        false,
        "set",
        with_alias(),
    )
    .await;
    publ.publish_with("", V5QoS::AtLeastOnce, false, "use", with_alias())
        .await;
    for expected in ["set", "use"] {
        let got = sub.next_publish().await;
        assert_eq!(&got.topic[..], b"alias/long/topic");
        assert_eq!(text(&got.payload), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_empty_client_id_gets_an_assigned_identifier() {
    let broker = TestBroker::start().await;
    let (mut c, ack) = V5Client::connect(v5_options(broker.mqtt_addr(), "")).await;
    let assigned = ack
        .properties
        .and_then(|p| p.assigned_client_identifier)
        .expect("CONNACK carries an Assigned Client Identifier");
    assert!(!assigned.is_empty());
    // The connection is usable.
    c.subscribe("assigned/t", V5QoS::AtLeastOnce).await;
    c.publish("assigned/t", V5QoS::AtLeastOnce, false, "x")
        .await;
    assert_eq!(text(&c.next_publish().await.payload), "x");
}
