//! Property tests: every packet we encode decodes back to the same value,
//! in both versions, whole or fed in pieces.

mod common;

use std::collections::BTreeSet;

use bytes::BytesMut;
use proptest::prelude::*;
use protocol_mqtt::*;

const MAX: usize = MAX_PACKET_SIZE;

#[test]
fn strategies_cover_every_packet_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    for (v, expected) in [(ProtocolVersion::V311, 14), (ProtocolVersion::V5, 15)] {
        let mut runner = TestRunner::deterministic();
        let strategy = common::packet(v);
        let mut names = BTreeSet::new();
        for _ in 0..1_000 {
            names.insert(
                strategy
                    .new_tree(&mut runner)
                    .expect("tree")
                    .current()
                    .name(),
            );
        }
        assert_eq!(names.len(), expected, "{v:?} covered: {names:?}");
    }
}

fn round_trip(packet: &Packet, v: ProtocolVersion) -> Result<(), TestCaseError> {
    let wire = common::wire(packet, v);
    prop_assert_eq!(wire.len(), packet.encoded_len(v).expect("len"));
    prop_assert_eq!(wire[0] >> 4, packet.packet_type());
    let mut src = wire.clone();
    let decoded = decode(&mut src, Some(v), MAX)
        .expect("decode")
        .expect("whole packet");
    prop_assert!(src.is_empty());
    prop_assert_eq!(&decoded, packet);
    // Exactly at the size limit is fine; one byte below is not.
    let mut src = wire.clone();
    prop_assert!(decode(&mut src, Some(v), wire.len()).is_ok());
    let mut src = wire.clone();
    let too_small = decode(&mut src, Some(v), wire.len() - 1);
    prop_assert!(
        matches!(too_small, Err(DecodeError::PacketTooLarge { .. })),
        "{:?}",
        too_small
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v311_round_trip(packet in common::packet(ProtocolVersion::V311)) {
        round_trip(&packet, ProtocolVersion::V311)?;
    }

    #[test]
    fn v5_round_trip(packet in common::packet(ProtocolVersion::V5)) {
        round_trip(&packet, ProtocolVersion::V5)?;
    }

    #[test]
    fn connect_decodes_before_version_is_known(
        c in prop_oneof![common::connect(ProtocolVersion::V311), common::connect(ProtocolVersion::V5)]
    ) {
        // A CONNECT encodes in its own version whatever the argument says.
        let packet = Packet::Connect(c.clone());
        let mut src = common::wire(&packet, ProtocolVersion::V311);
        let decoded = decode(&mut src, None, MAX).expect("decode").expect("whole");
        prop_assert_eq!(decoded, packet);
    }

    #[test]
    fn stream_in_two_pieces(
        v in prop_oneof![Just(ProtocolVersion::V311), Just(ProtocolVersion::V5)],
        seed in proptest::collection::vec(any::<u32>(), 1..5),
        split in any::<prop::sample::Index>(),
    ) {
        // Build packets deterministically from the seed to keep shrinking cheap.
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let mut packets = Vec::new();
        for s in seed {
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[u8::try_from(s % 251).unwrap_or(0); 32]);
            let mut runner = TestRunner::new_with_rng(Config::default(), rng);
            packets.push(common::packet(v).new_tree(&mut runner).expect("tree").current());
        }
        let mut wire = BytesMut::new();
        for p in &packets {
            encode(p, v, &mut wire).expect("encode");
        }
        let cut = split.index(wire.len() + 1);
        let mut src = BytesMut::from(&wire[..cut]);
        let mut rest = &wire[cut..];
        let mut out = Vec::new();
        loop {
            match decode(&mut src, Some(v), MAX).expect("decode") {
                Some(p) => out.push(p),
                None if rest.is_empty() => break,
                None => {
                    src.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        prop_assert!(src.is_empty());
        prop_assert_eq!(out, packets);
    }

    #[test]
    fn topic_filter_matching_agrees_with_naive_model(
        filter in common::topic_filter(),
        name in common::topic_name(),
    ) {
        // Naive model: recursive level matcher with the `$` rule.
        fn model(f: &[&str], n: &[&str]) -> bool {
            match (f.first(), n.first()) {
                (Some(&"#"), _) => true,
                (Some(&"+"), Some(_)) => model(&f[1..], &n[1..]),
                (Some(a), Some(b)) if a == b => model(&f[1..], &n[1..]),
                (None, None) => true,
                _ => false,
            }
        }
        let f: Vec<&str> = filter.as_str().split('/').collect();
        let n: Vec<&str> = name.as_str().split('/').collect();
        let dollar_block = name.as_str().starts_with('$') && (f[0] == "+" || f[0] == "#");
        prop_assert_eq!(filter.matches(&name), !dollar_block && model(&f, &n));
    }
}

#[test]
fn publish_payload_is_zero_copy() {
    let p = Packet::Publish(Publish::new(
        TopicName::new("a/b").expect("name"),
        &b"hello world"[..],
    ));
    let mut src = common::wire(&p, ProtocolVersion::V311);
    let range = src.as_ptr_range();
    let Some(Packet::Publish(decoded)) =
        decode(&mut src, Some(ProtocolVersion::V311), MAX).expect("ok")
    else {
        panic!("not a publish");
    };
    let payload = decoded.payload.as_ptr_range();
    assert!(
        range.start <= payload.start && payload.end <= range.end,
        "payload points into the input buffer"
    );
    assert_eq!(&decoded.payload[..], b"hello world");
}
