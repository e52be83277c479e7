//! Property tests: everything we encode decodes back to the same value.

mod common;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use protocol_amqp::*;

/// Number of distinct method variants the strategy must cover.
#[test]
fn strategy_covers_every_method() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = common::method();
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..2_000 {
        let m = strategy.new_tree(&mut runner).expect("tree").current();
        names.insert(m.name());
    }
    assert_eq!(names.len(), 66, "covered: {names:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn method_round_trip(method in common::method()) {
        let mut buf = BytesMut::new();
        method.encode(&mut buf);
        prop_assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), method.class_id());
        prop_assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), method.method_id());
        let decoded = Method::decode(&buf).expect("decode");
        prop_assert_eq!(&decoded, &method);
        prop_assert_eq!(Method::name_of(method.class_id(), method.method_id()), Some(method.name()));
    }

    #[test]
    fn table_round_trip(table in common::table()) {
        let mut buf = BytesMut::new();
        table.encode(&mut buf);
        prop_assert_eq!(buf.len(), table.encoded_len());
        prop_assert_eq!(FieldTable::decode(&buf).expect("decode"), table);
    }

    #[test]
    fn properties_round_trip(props in common::properties()) {
        let mut buf = BytesMut::new();
        props.encode(&mut buf);
        prop_assert_eq!(buf.len(), props.encoded_len());
        prop_assert_eq!(&BasicProperties::decode(&buf).expect("decode"), &props);
        buf.extend_from_slice(b"trailer");
        let (prefix, used) = BasicProperties::decode_prefix(&buf).expect("decode_prefix");
        prop_assert_eq!(prefix, props);
        prop_assert_eq!(&buf[used..], b"trailer");
    }

    #[test]
    fn frame_round_trip(frames in proptest::collection::vec(common::frame(), 1..6), split in any::<prop::sample::Index>()) {
        let mut wire = BytesMut::new();
        for f in &frames {
            encode_frame(f, &mut wire);
        }
        // Feed the stream in two pieces to exercise the "need more" path.
        let cut = split.index(wire.len() + 1);
        let mut src = BytesMut::from(&wire[..cut]);
        let mut rest = &wire[cut..];
        let mut out = Vec::new();
        loop {
            match decode_frame(&mut src, 0).expect("decode") {
                Some(f) => out.push(f),
                None if rest.is_empty() => break,
                None => {
                    src.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        prop_assert!(src.is_empty());
        prop_assert_eq!(out, frames);
    }

    #[test]
    fn content_reassembles(
        channel in 1u16..,
        method in common::content_method(),
        props in common::properties(),
        body in proptest::collection::vec(any::<u8>(), 0..20_000),
        frame_max in prop_oneof![Just(0u32), 9u32..200, 4096u32..=20_000],
    ) {
        // Method and header frames are not split (RabbitMQ ignores frame_max
        // for them too), so decode without a limit and check body frames.
        let mut wire = BytesMut::new();
        encode_content(channel, &method, &props, &body, frame_max, &mut wire);
        let mut asm = CommandAssembler::new();
        let mut commands = Vec::new();
        let mut body_frames = 0usize;
        while let Some(frame) = decode_frame(&mut wire, 0).expect("decode") {
            if let Frame::Body { payload, .. } = &frame {
                body_frames += 1;
                prop_assert!(!payload.is_empty());
                if frame_max != 0 {
                    prop_assert!(payload.len() <= (frame_max - 8) as usize);
                }
            }
            if let Some(cmd) = asm.feed(frame).expect("assemble") {
                commands.push(cmd);
            }
        }
        prop_assert!(wire.is_empty());
        let expected_frames = match (body.len(), frame_max) {
            (0, _) => 0,
            (_, 0) => 1,
            (n, fm) => n.div_ceil((fm - 8) as usize),
        };
        prop_assert_eq!(body_frames, expected_frames);
        prop_assert_eq!(commands.len(), 1);
        let cmd = commands.remove(0);
        prop_assert_eq!(cmd.channel, channel);
        prop_assert_eq!(cmd.method, method);
        let content = cmd.content.expect("content");
        prop_assert_eq!(content.properties, props);
        prop_assert_eq!(&content.body[..], &body[..]);
        prop_assert!(!asm.is_pending(channel));
    }
}

#[test]
fn single_body_frame_is_not_copied() {
    let mut asm = CommandAssembler::new();
    let publish = Method::from(BasicPublish::default());
    assert!(
        asm.feed(Frame::Method {
            channel: 1,
            method: publish
        })
        .unwrap()
        .is_none()
    );
    let header = Frame::Header {
        channel: 1,
        class_id: 60,
        body_size: 5,
        properties: BasicProperties::default(),
    };
    assert!(asm.feed(header).unwrap().is_none());
    let payload = Bytes::from_static(b"hello");
    let ptr = payload.as_ptr();
    let cmd = asm
        .feed(Frame::Body {
            channel: 1,
            payload,
        })
        .unwrap()
        .expect("complete");
    assert_eq!(cmd.content.expect("content").body.as_ptr(), ptr);
}
