//! Malformed and hostile input: never panic, never buffer an oversized
//! frame, map every failure to the right reply code.

mod common;

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use protocol_amqp::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), frame_max in prop_oneof![Just(0u32), 1u32..600]) {
        let mut src = BytesMut::from(&bytes[..]);
        // Consume frames until we need more bytes or hit an error.
        while let Ok(Some(_)) = decode_frame(&mut src, frame_max) {}
        let _ = Method::decode(&bytes);
        let _ = BasicProperties::decode(&bytes);
        let _ = FieldTable::decode(&bytes);
    }

    #[test]
    fn mutated_methods_never_panic(method in common::method(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut buf = BytesMut::new();
        method.encode(&mut buf);
        let i = at.index(buf.len());
        buf[i] = byte;
        let _ = Method::decode(&buf);
        let _ = Method::decode(&buf[..cut.index(buf.len() + 1)]);
    }

    #[test]
    fn truncated_frames_need_more(frame in common::frame(), cut in any::<prop::sample::Index>()) {
        let mut wire = BytesMut::new();
        encode_frame(&frame, &mut wire);
        let cut = cut.index(wire.len());
        let mut src = BytesMut::from(&wire[..cut]);
        prop_assert_eq!(decode_frame(&mut src, 0), Ok(None));
        prop_assert_eq!(src.len(), cut, "nothing consumed");
    }

    #[test]
    fn truncated_method_args_are_syntax_errors(method in common::method(), cut in any::<prop::sample::Index>()) {
        let mut buf = BytesMut::new();
        method.encode(&mut buf);
        let cut = cut.index(buf.len());
        if let Err(e) = Method::decode(&buf[..cut]) {
            prop_assert_eq!(e.reply_code(), reply_code::SYNTAX_ERROR);
        }
    }
}

#[test]
fn oversized_frame_rejected_from_header_alone() {
    let mut src = BytesMut::new();
    src.put_u8(3);
    src.put_u16(1);
    src.put_u32(u32::MAX);
    let cap_before = src.capacity();
    let err = decode_frame(&mut src, 131_072).unwrap_err();
    assert_eq!(
        err,
        FrameError::TooLarge {
            size: u32::MAX,
            max: 131_072
        }
    );
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    assert_eq!(
        src.capacity(),
        cap_before,
        "no buffer growth for a rejected frame"
    );
}

#[test]
fn frame_max_tolerance_is_eight_bytes() {
    let frame_max = 4096;
    for (size, ok) in [
        (frame_max - 8, true),
        (frame_max, true),
        (frame_max + 1, false),
    ] {
        let mut src = BytesMut::new();
        encode_frame(
            &Frame::Body {
                channel: 1,
                payload: vec![0u8; size as usize].into(),
            },
            &mut src,
        );
        assert_eq!(decode_frame(&mut src, frame_max).is_ok(), ok, "size {size}");
    }
}

#[test]
fn unlimited_frame_max_does_not_reserve() {
    let mut src = BytesMut::from(&[3u8, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF][..]);
    assert_eq!(decode_frame(&mut src, 0), Ok(None));
    assert!(src.capacity() < 1024 * 1024);
}

#[test]
fn frame_level_errors() {
    let mut bad_end = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xCD][..]);
    assert_eq!(
        decode_frame(&mut bad_end, 0),
        Err(FrameError::BadFrameEnd(0xCD))
    );

    let mut bad_type = BytesMut::from(&[4u8, 0, 0, 0, 0, 0, 0, 0xCE][..]);
    let err = decode_frame(&mut bad_type, 0).unwrap_err();
    assert_eq!(err, FrameError::UnknownFrameType(4));
    assert_eq!(err.reply_code(), 501);

    let mut hb_payload = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 1, 0, 0xCE][..]);
    assert_eq!(
        decode_frame(&mut hb_payload, 0),
        Err(FrameError::BadHeartbeat)
    );

    // Heartbeat on a non-zero channel is returned; the broker answers 505.
    let mut hb5 = BytesMut::from(&[8u8, 0, 5, 0, 0, 0, 0, 0xCE][..]);
    assert_eq!(
        decode_frame(&mut hb5, 0),
        Ok(Some(Frame::Heartbeat { channel: 5 }))
    );

    // Unknown method inside a method frame: 503.
    let mut unknown = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0, 99, 0, 1, 0xCE][..]);
    let err = decode_frame(&mut unknown, 0).unwrap_err();
    assert_eq!(
        err,
        FrameError::Method(MethodError::UnknownMethod {
            class_id: 99,
            method_id: 1
        })
    );
    assert_eq!(err.reply_code(), reply_code::COMMAND_INVALID);

    // Content header with trailing garbage: 502.
    let mut header = BytesMut::from(
        &[
            2u8, 0, 1, 0, 0, 0, 15, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0xCE,
        ][..],
    );
    let err = decode_frame(&mut header, 0).unwrap_err();
    assert_eq!(err.reply_code(), reply_code::SYNTAX_ERROR);
}

#[test]
fn method_syntax_errors() {
    // Trailing byte after tx.select.
    assert_eq!(
        Method::decode(&[0, 90, 0, 10, 0]),
        Err(MethodError::Syntax(SyntaxError::TrailingBytes(1)))
    );
    // Shortstr that is not UTF-8 (basic.consume-ok).
    assert_eq!(
        Method::decode(&[0, 60, 0, 21, 2, 0xC3, 0x28]),
        Err(MethodError::Syntax(SyntaxError::BadUtf8))
    );
    // Shortstr length beyond the data.
    assert_eq!(
        Method::decode(&[0, 60, 0, 21, 9, b'a']),
        Err(MethodError::Syntax(SyntaxError::Truncated))
    );
    // Unknown field type tag in queue.declare arguments.
    let mut buf = BytesMut::new();
    buf.put_slice(&[0, 50, 0, 10, 0, 0, 1, b'q', 0]);
    buf.put_slice(&[0, 0, 0, 3, 1, b'k', b'Z']);
    let err = Method::decode(&buf).unwrap_err();
    assert_eq!(
        err,
        MethodError::Syntax(SyntaxError::UnknownFieldType(b'Z'))
    );
    assert_eq!(err.reply_code(), reply_code::SYNTAX_ERROR);
    // The PDF's 'U' (signed 16) is not a RabbitMQ tag either.
    assert!(FieldTable::decode(&[0, 0, 0, 5, 1, b'k', b'U', 0, 1]).is_err());
    // Table length larger than the data.
    assert_eq!(
        FieldTable::decode(&[0, 0, 1, 0, 1]),
        Err(SyntaxError::Truncated)
    );
    // Only the class id.
    assert!(Method::decode(&[0, 10]).is_err());
    assert!(Method::decode(&[]).is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // 100_000 nested tables, each `{ "": F <inner> }`, built inside out.
    let mut inner: Vec<u8> = vec![0, 0, 0, 0];
    for _ in 0..100_000 {
        let mut next = Vec::with_capacity(inner.len() + 6);
        let len = u32::try_from(inner.len() + 2).unwrap();
        next.extend_from_slice(&len.to_be_bytes());
        next.push(0); // empty key
        next.push(b'F');
        next.extend_from_slice(&inner);
        inner = next;
    }
    assert_eq!(FieldTable::decode(&inner), Err(SyntaxError::TooDeep));

    // Nesting up to the limit is fine.
    let mut t = FieldTable::new();
    for _ in 0..MAX_TABLE_DEPTH {
        let mut outer = FieldTable::new();
        outer.insert(ShortStr::from_static("t"), FieldValue::Table(t));
        t = outer;
    }
    let mut buf = BytesMut::new();
    t.encode(&mut buf);
    assert_eq!(FieldTable::decode(&buf), Ok(t));

    // Deep arrays too.
    let mut arr: Vec<u8> = vec![b'A', 0, 0, 0, 0];
    for _ in 0..100_000 {
        let len = u32::try_from(arr.len()).unwrap();
        let mut next = vec![b'A'];
        next.extend_from_slice(&len.to_be_bytes());
        next.extend_from_slice(&arr);
        arr = next;
    }
    let mut table = vec![];
    table.extend_from_slice(&u32::try_from(arr.len() + 1).unwrap().to_be_bytes());
    table.push(0);
    table.extend_from_slice(&arr);
    assert_eq!(FieldTable::decode(&table), Err(SyntaxError::TooDeep));
}
