//! Malformed and hostile input: never panic, never buffer an oversized
//! packet, need-more never consumes, and every failure maps to the right
//! 5.0 reason code.

mod common;

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use protocol_mqtt::*;

use ProtocolVersion::{V5, V311};

fn version() -> impl Strategy<Value = Option<ProtocolVersion>> {
    prop_oneof![Just(None), Just(Some(V311)), Just(Some(V5))]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), v in version(), max in 0usize..300) {
        let mut src = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode(&mut src, v, max) {}
    }

    #[test]
    fn mutated_packets_never_panic(
        v in prop_oneof![Just(V311), Just(V5)],
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        let packet = common::packet(v).new_tree(&mut runner).expect("tree").current();
        let mut wire = common::wire(&packet, v);
        let i = at.index(wire.len());
        wire[i] = byte;
        let _ = decode(&mut wire, Some(v), MAX_PACKET_SIZE);
    }

    #[test]
    fn truncated_packets_need_more_and_consume_nothing(
        v in prop_oneof![Just(V311), Just(V5)],
        packet in prop_oneof![common::packet(V311), common::packet(V5)],
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = BytesMut::new();
        if encode(&packet, v, &mut wire).is_err() {
            return Ok(());
        }
        let cut = cut.index(wire.len());
        let mut src = BytesMut::from(&wire[..cut]);
        let got = decode(&mut src, Some(v), MAX_PACKET_SIZE);
        prop_assert_eq!(got, Ok(None));
        prop_assert_eq!(src.len(), cut, "nothing consumed");
    }
}

/// Builds a packet from its first byte and body.
fn frame(first: u8, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(first);
    let mut len = body.len();
    loop {
        let low = u8::try_from(len % 128).expect("7 bits");
        len /= 128;
        if len == 0 {
            b.put_u8(low);
            break;
        }
        b.put_u8(low | 0x80);
    }
    b.put_slice(body);
    b
}

fn err(first: u8, body: &[u8], v: Option<ProtocolVersion>) -> DecodeError {
    let mut src = frame(first, body);
    match decode(&mut src, v, MAX_PACKET_SIZE) {
        Err(e) => e,
        Ok(p) => panic!("expected an error for {first:#04x} {body:02x?}, got {p:?}"),
    }
}

fn code(first: u8, body: &[u8], v: Option<ProtocolVersion>) -> u8 {
    err(first, body, v).reason_code().0
}

fn ok(first: u8, body: &[u8], v: Option<ProtocolVersion>) -> Packet {
    let mut src = frame(first, body);
    decode(&mut src, v, MAX_PACKET_SIZE)
        .expect("valid")
        .expect("whole")
}

/// A 5.0 PUBLISH QoS 0 to "t" with the given raw property bytes.
fn publish_v5(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, b't', u8::try_from(props.len()).expect("short")];
    body.extend_from_slice(props);
    body
}

const V5S: Option<ProtocolVersion> = Some(V5);
const V3S: Option<ProtocolVersion> = Some(V311);

#[test]
fn oversized_packet_rejected_from_header_alone() {
    let mut src = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let e = decode(&mut src, V5S, 1024).expect_err("too large");
    assert_eq!(
        e,
        DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 1024
        }
    );
    assert_eq!(e.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    assert!(src.capacity() < 1024, "nothing reserved for the body");
}

#[test]
fn fixed_header_errors_are_malformed() {
    assert_eq!(code(0x00, &[], V5S), 0x81, "type 0");
    assert_eq!(code(0xF0, &[], V3S), 0x81, "AUTH in 3.1.1");
    assert_eq!(code(0x41, &[0, 1], V5S), 0x81, "PUBACK flags");
    assert_eq!(code(0x60, &[0, 1], V5S), 0x81, "PUBREL flags 0000");
    assert_eq!(
        code(0x80, &[0, 1, 0, 1, b'a', 0], V5S),
        0x81,
        "SUBSCRIBE flags 0000"
    );
    assert_eq!(
        code(0xA0, &[0, 1, 0, 1, b'a'], V3S),
        0x81,
        "UNSUBSCRIBE flags 0000"
    );
    assert_eq!(code(0xC1, &[], V5S), 0x81, "PINGREQ flags");
    assert_eq!(code(0x36, &[0, 1, b't', 0, 1], V3S), 0x81, "PUBLISH QoS 3");
    assert_eq!(code(0x38, &[0, 1, b't'], V3S), 0x81, "DUP on QoS 0");
    assert_eq!(code(0xC0, &[0], V5S), 0x81, "PINGREQ with a body");
    assert_eq!(code(0x40, &[0, 0], V311.into()), 0x81, "packet id 0");
    assert_eq!(
        code(0x32, &[0, 1, b't', 0, 0], V5S),
        0x81,
        "PUBLISH packet id 0"
    );
    assert_eq!(code(0x40, &[0], V3S), 0x81, "truncated");
    assert_eq!(
        code(0x40, &[0, 1, 0], V3S),
        0x81,
        "3.1.1 PUBACK with a reason byte"
    );
    assert_eq!(
        code(0xB0, &[0, 1, 0], V3S),
        0x81,
        "3.1.1 UNSUBACK with a payload"
    );
    assert_eq!(
        code(0x30, &[0, 1, b't'], None),
        0x82,
        "PUBLISH before CONNECT"
    );
}

#[test]
fn strings_and_topics() {
    assert_eq!(code(0x30, &[0, 2, 0xC3, 0x28], V3S), 0x81, "invalid UTF-8");
    assert_eq!(
        code(0x30, &[0, 3, 0xED, 0xA0, 0x80], V3S),
        0x81,
        "UTF-16 surrogate"
    );
    assert_eq!(code(0x30, &[0, 2, b'a', 0], V3S), 0x81, "U+0000");
    assert_eq!(
        code(0x30, &[0, 3, b'a', b'/', b'+'], V5S),
        0x90,
        "wildcard in name"
    );
    assert_eq!(code(0x30, &[0, 1, b'#'], V3S), 0x90, "wildcard in name");
    assert_eq!(code(0x30, &[0, 0], V3S), 0x90, "empty topic in 3.1.1");
    assert_eq!(code(0x30, &[0, 0, 0], V5S), 0x82, "empty topic, no alias");
    assert_eq!(
        code(0x30, &[0, 0, 3, 0x23, 0, 0], V5S),
        0x94,
        "topic alias 0"
    );
    let Packet::Publish(p) = ok(0x30, &[0, 0, 3, 0x23, 0, 7, b'x'], V5S) else {
        panic!()
    };
    assert!(p.topic.is_empty());
    assert_eq!(p.properties.topic_alias.map(|a| a.get()), Some(7));
}

#[test]
fn properties() {
    // Duplicate Content Type.
    let dup = publish_v5(&[0x03, 0, 1, b'a', 0x03, 0, 1, b'b']);
    assert_eq!(code(0x30, &dup, V5S), 0x82);
    // User Property and (server→client) Subscription Identifier may repeat.
    let rep = publish_v5(&[
        0x26, 0, 1, b'k', 0, 1, b'v', 0x26, 0, 1, b'k', 0, 1, b'w', 0x0B, 1, 0x0B, 2,
    ]);
    let Packet::Publish(p) = ok(0x30, &rep, V5S) else {
        panic!()
    };
    assert_eq!(p.properties.user_properties.len(), 2);
    assert_eq!(p.properties.subscription_identifiers.len(), 2);
    // But not in SUBSCRIBE.
    let sub = [0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, b'a', 0];
    assert_eq!(code(0x82, &sub, V5S), 0x82);
    assert_eq!(
        code(0x82, &[0, 1, 2, 0x0B, 0, 0, 1, b'a', 0], V5S),
        0x82,
        "subscription id 0"
    );
    // Property not allowed in the packet, and an unknown identifier.
    assert_eq!(code(0x30, &publish_v5(&[0x11, 0, 0, 0, 1]), V5S), 0x81);
    assert_eq!(code(0x40, &[0, 1, 0, 3, 0x23, 0, 1], V5S), 0x81);
    assert_eq!(code(0x30, &publish_v5(&[0x7F, 0]), V5S), 0x81);
    // Property length past the end of the packet.
    assert_eq!(code(0x30, &[0, 1, b't', 9, 0x01], V5S), 0x81);
    // Property values the spec calls protocol errors.
    let connect = |props: &[u8]| {
        let mut b = vec![
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            5,
            0x02,
            0,
            0,
            u8::try_from(props.len()).expect("short"),
        ];
        b.extend_from_slice(props);
        b.extend_from_slice(&[0, 0]);
        b
    };
    assert!(matches!(
        ok(0x10, &connect(&[0x21, 0, 1]), None),
        Packet::Connect(_)
    ));
    assert_eq!(
        code(0x10, &connect(&[0x21, 0, 0]), None),
        0x82,
        "receive maximum 0"
    );
    assert_eq!(
        code(0x10, &connect(&[0x27, 0, 0, 0, 0]), None),
        0x82,
        "max packet size 0"
    );
    assert_eq!(
        code(0x10, &connect(&[0x17, 2]), None),
        0x82,
        "request problem info 2"
    );
    assert_eq!(
        code(0x10, &connect(&[0x19, 2]), None),
        0x82,
        "request response info 2"
    );
    assert_eq!(code(0x20, &[0, 0, 2, 0x24, 2], V5S), 0x82, "maximum QoS 2");
    // Non-minimal property length in 5.0.
    assert_eq!(code(0x30, &[0, 1, b't', 0x80, 0x00], V5S), 0x81);
}

#[test]
fn subscribe_and_unsubscribe() {
    assert_eq!(code(0x82, &[0, 1], V3S), 0x82, "no filters");
    assert_eq!(code(0x82, &[0, 1, 0], V5S), 0x82, "no filters");
    assert_eq!(code(0xA2, &[0, 1], V3S), 0x82, "no filters");
    assert_eq!(
        code(0x82, &[0, 1, 0, 1, b'a', 0x04], V3S),
        0x81,
        "3.1.1 option bits beyond QoS"
    );
    assert_eq!(code(0x82, &[0, 1, 0, 1, b'a', 0x03], V3S), 0x81, "QoS 3");
    assert_eq!(
        code(0x82, &[0, 1, 0, 0, 1, b'a', 0x40], V5S),
        0x81,
        "reserved bits"
    );
    assert_eq!(
        code(0x82, &[0, 1, 0, 0, 1, b'a', 0x30], V5S),
        0x82,
        "retain handling 3"
    );
    assert_eq!(
        code(0x82, &[0, 1, 0, 0, 5, b'a', b'/', b'#', b'/', b'b'], V5S),
        0x8F,
        "bad filter"
    );
    assert_eq!(
        code(0xA2, &[0, 1, 0, 0, 2, b'a', b'+'], V5S),
        0x8F,
        "bad filter"
    );
    assert_eq!(code(0x82, &[0, 1, 0, 0, 0, 0], V5S), 0x8F, "empty filter");
    let shared = [
        0, 1, 0, 0, 10, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'a',
    ];
    let mut no_local = shared.to_vec();
    no_local.push(0x04);
    assert_eq!(code(0x82, &no_local, V5S), 0x82, "no local on shared");
    let mut plain = shared.to_vec();
    plain.push(0x01);
    assert!(matches!(ok(0x82, &plain, V5S), Packet::Subscribe(_)));
}

fn connect_v(level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
    if level == 5 {
        b.push(0);
    }
    b.extend_from_slice(payload);
    b
}

#[test]
fn connect_flags() {
    let id = [0, 1, b'c'];
    assert!(matches!(
        ok(0x10, &connect_v(4, 0x02, &id), None),
        Packet::Connect(_)
    ));
    assert_eq!(
        code(0x10, &connect_v(4, 0x03, &id), None),
        0x81,
        "reserved bit"
    );
    assert_eq!(
        code(0x10, &connect_v(4, 0x08, &id), None),
        0x81,
        "will QoS without will"
    );
    assert_eq!(
        code(0x10, &connect_v(5, 0x20, &id), None),
        0x81,
        "will retain without will"
    );
    let will = [0, 1, b'c', 0, 1, b'w', 0, 0];
    assert_eq!(
        code(0x10, &connect_v(4, 0x1C, &will), None),
        0x81,
        "will QoS 3"
    );
    assert!(matches!(
        ok(0x10, &connect_v(4, 0x14, &will), None),
        Packet::Connect(_)
    ));
    let mut will5 = vec![0, 1, b'c', 0];
    will5.extend_from_slice(&[0, 1, b'+', 0, 0]);
    assert_eq!(
        code(0x10, &connect_v(5, 0x04, &will5), None),
        0x90,
        "wildcard will topic"
    );
    let pw = [0, 1, b'c', 0, 1, b'p'];
    assert_eq!(
        code(0x10, &connect_v(4, 0x40, &pw), None),
        0x81,
        "3.1.1 password alone"
    );
    let Packet::Connect(c) = ok(0x10, &connect_v(5, 0x40, &pw), None) else {
        panic!()
    };
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
    assert_eq!(
        code(0x10, &connect_v(4, 0x00, &[0, 1]), None),
        0x81,
        "truncated client id"
    );
}

#[test]
fn unsupported_protocol_versions() {
    // MQTT 3.1: "MQIsdp", level 3.
    let mut b = vec![0, 6];
    b.extend_from_slice(b"MQIsdp");
    b.extend_from_slice(&[3, 0x02, 0, 60, 0, 1, b'c']);
    let e = err(0x10, &b, None);
    assert_eq!(
        e,
        DecodeError::UnsupportedProtocol {
            name: "MQIsdp".into(),
            level: 3
        }
    );
    assert_eq!(e.reason_code(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    let e = err(0x10, &connect_v(6, 0x02, &[0, 1, b'c']), None);
    assert_eq!(
        e,
        DecodeError::UnsupportedProtocol {
            name: "MQTT".into(),
            level: 6
        }
    );
    let mut wrong_name = connect_v(4, 0x02, &[0, 1, b'c']);
    wrong_name[2] = b'X';
    assert_eq!(code(0x10, &wrong_name, None), 0x84);
}

#[test]
fn connack_reserved_flags() {
    assert_eq!(code(0x20, &[0x02, 0x00], V3S), 0x81);
    assert_eq!(
        code(0x20, &[0x00, 0x00], V5S),
        0x81,
        "5.0 CONNACK needs a property length"
    );
}
