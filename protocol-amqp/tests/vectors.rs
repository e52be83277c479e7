//! Byte-exact vectors written out by hand from the AMQP 0-9-1 spec (and
//! RabbitMQ's field table tags).

use bytes::{Bytes, BytesMut};
use protocol_amqp::*;

fn frame_bytes(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(frame, &mut buf);
    buf.to_vec()
}

fn method_bytes(method: impl Into<Method>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    method.into().encode(&mut buf);
    buf.to_vec()
}

#[test]
fn heartbeat_frame() {
    let wire = [0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xCE];
    assert_eq!(frame_bytes(&Frame::Heartbeat { channel: 0 }), wire);
    let mut src = BytesMut::from(&wire[..]);
    assert_eq!(
        decode_frame(&mut src, 0).unwrap(),
        Some(Frame::Heartbeat { channel: 0 })
    );
    assert!(src.is_empty());
}

#[test]
fn protocol_header() {
    assert_eq!(&PROTOCOL_HEADER, b"AMQP\x00\x00\x09\x01");
    assert_eq!(PROTOCOL_HEADER, [0x41, 0x4D, 0x51, 0x50, 0, 0, 9, 1]);
    assert_eq!(check_protocol_header(&PROTOCOL_HEADER), Ok(Some(())));
    assert_eq!(check_protocol_header(b"AMQP\x01\x01\x00\x09"), Ok(Some(())));
    assert_eq!(check_protocol_header(b"AMQP\x00\x00\x09"), Ok(None));
    assert_eq!(check_protocol_header(b""), Ok(None));
    assert_eq!(
        check_protocol_header(b"AMQP\x00\x00\x09\x01extra"),
        Ok(Some(()))
    );
    assert_eq!(
        check_protocol_header(b"AMQP\x00\x00\x08\x00"),
        Err(BadProtocolHeader(*b"AMQP\x00\x00\x08\x00"))
    );
    assert!(check_protocol_header(b"GET / HTTP/1.1").is_err());
    assert!(check_protocol_header(b"AMQP\x03\x01\x00\x00").is_err());
}

#[test]
fn connection_tune_frame() {
    let tune = ConnectionTune {
        channel_max: 2047,
        frame_max: 131_072,
        heartbeat: 60,
    };
    let wire = [
        0x01, // method frame
        0x00, 0x00, // channel 0
        0x00, 0x00, 0x00, 0x0C, // size 12
        0x00, 0x0A, 0x00, 0x1E, // connection.tune (10, 30)
        0x07, 0xFF, // channel-max
        0x00, 0x02, 0x00, 0x00, // frame-max
        0x00, 0x3C, // heartbeat
        0xCE,
    ];
    let frame = Frame::Method {
        channel: 0,
        method: tune.into(),
    };
    assert_eq!(frame_bytes(&frame), wire);
    let mut src = BytesMut::from(&wire[..]);
    assert_eq!(decode_frame(&mut src, FRAME_MIN_SIZE).unwrap(), Some(frame));
}

#[test]
fn basic_publish_packed_bits() {
    let publish = BasicPublish {
        exchange: ShortStr::from_static("ex"),
        routing_key: ShortStr::from_static("rk"),
        mandatory: true,
        immediate: false,
    };
    let wire = [
        0x00, 0x3C, 0x00, 0x28, // basic.publish (60, 40)
        0x00, 0x00, // reserved ticket
        0x02, b'e', b'x', // exchange
        0x02, b'r', b'k', // routing-key
        0x01, // mandatory = bit 0, immediate = bit 1
    ];
    assert_eq!(method_bytes(publish.clone()), wire);
    assert_eq!(
        Method::decode(&wire).unwrap(),
        Method::BasicPublish(publish.clone())
    );

    let both = BasicPublish {
        immediate: true,
        ..publish.clone()
    };
    assert_eq!(*method_bytes(both).last().unwrap(), 0x03);
    let only_immediate = BasicPublish {
        mandatory: false,
        immediate: true,
        ..publish
    };
    assert_eq!(*method_bytes(only_immediate).last().unwrap(), 0x02);
}

#[test]
fn queue_declare_bits_and_table() {
    let declare = QueueDeclare {
        queue: ShortStr::from_static("q"),
        durable: true,
        auto_delete: true,
        ..Default::default()
    };
    let wire = [
        0x00,
        0x32,
        0x00,
        0x0A, // queue.declare (50, 10)
        0x00,
        0x00, // ticket
        0x01,
        b'q',        // queue
        0b0000_1010, // passive(0) durable(1) exclusive(2) auto-delete(3) nowait(4)
        0x00,
        0x00,
        0x00,
        0x00, // empty arguments
    ];
    assert_eq!(method_bytes(declare.clone()), wire);
    assert_eq!(
        Method::decode(&wire).unwrap(),
        Method::QueueDeclare(declare)
    );
}

#[test]
fn exchange_unbind_ok_is_method_51() {
    assert_eq!(method_bytes(ExchangeUnbindOk), [0x00, 0x28, 0x00, 0x33]);
    assert_eq!(
        Method::decode(&[0x00, 0x28, 0x00, 0x33]).unwrap(),
        ExchangeUnbindOk.into()
    );
    assert!(Method::decode(&[0x00, 0x28, 0x00, 0x29]).is_err());
}

#[test]
fn reserved_fields_are_written_empty() {
    // connection.open: vhost "/", capabilities "", insist false.
    let open = ConnectionOpen {
        virtual_host: ShortStr::from_static("/"),
    };
    assert_eq!(method_bytes(open), [0, 10, 0, 40, 1, b'/', 0, 0]);
    // Clients may send a non-empty capabilities string and insist = true.
    let from_client = [0, 10, 0, 40, 1, b'/', 3, b'a', b'b', b'c', 1];
    assert!(
        matches!(Method::decode(&from_client).unwrap(), Method::ConnectionOpen(o) if o.virtual_host == "/")
    );
    assert_eq!(method_bytes(ConnectionOpenOk), [0, 10, 0, 41, 0]);
    assert_eq!(method_bytes(ChannelOpen), [0, 20, 0, 10, 0]);
    assert_eq!(method_bytes(ChannelOpenOk), [0, 20, 0, 11, 0, 0, 0, 0]);
    assert_eq!(method_bytes(BasicGetEmpty), [0, 60, 0, 72, 0]);
}

#[test]
fn field_table_with_rabbitmq_tags() {
    let mut table = FieldTable::new();
    table.insert(ShortStr::from_static("a"), FieldValue::I32(1));
    table.insert(
        ShortStr::from_static("b"),
        FieldValue::LongStr(Bytes::from_static(b"hi")),
    );
    table.insert(ShortStr::from_static("c"), FieldValue::Bool(true));
    table.insert(ShortStr::from_static("d"), FieldValue::I16(-2));
    table.insert(ShortStr::from_static("e"), FieldValue::I64(-1));
    let wire = [
        0x00, 0x00, 0x00, 0x24, // byte length 36
        0x01, b'a', b'I', 0x00, 0x00, 0x00, 0x01, // signed 32
        0x01, b'b', b'S', 0x00, 0x00, 0x00, 0x02, b'h', b'i', // long string
        0x01, b'c', b't', 0x01, // boolean
        0x01, b'd', b's', 0xFF, 0xFE, // 's' = signed 16 (RabbitMQ)
        0x01, b'e', b'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // 'l' = signed 64
    ];
    let mut buf = BytesMut::new();
    table.encode(&mut buf);
    assert_eq!(&buf[..], &wire[..]);
    assert_eq!(table.encoded_len(), wire.len());
    assert_eq!(FieldTable::decode(&wire).unwrap(), table);

    // 'L' is accepted as signed 64 but never emitted.
    let with_big_l = [0, 0, 0, 11, 1, b'x', b'L', 0, 0, 0, 0, 0, 0, 0, 7];
    let t = FieldTable::decode(&with_big_l).unwrap();
    assert_eq!(t.get("x"), Some(&FieldValue::I64(7)));

    // Nested array, table, void, decimal, byte array, timestamp.
    let mut nested = FieldTable::new();
    nested.insert(
        ShortStr::from_static("A"),
        FieldValue::Array(vec![FieldValue::U8(5), FieldValue::Void]),
    );
    nested.insert(
        ShortStr::from_static("F"),
        FieldValue::Table(FieldTable::new()),
    );
    nested.insert(
        ShortStr::from_static("D"),
        FieldValue::Decimal {
            scale: 2,
            value: 314,
        },
    );
    nested.insert(
        ShortStr::from_static("x"),
        FieldValue::ByteArray(Bytes::from_static(&[0xFF])),
    );
    nested.insert(ShortStr::from_static("T"), FieldValue::Timestamp(1));
    let wire = [
        0, 0, 0, 44, 1, b'A', b'A', 0, 0, 0, 3, b'B', 5, b'V', 1, b'F', b'F', 0, 0, 0, 0, 1, b'D',
        b'D', 2, 0, 0, 1, 58, 1, b'x', b'x', 0, 0, 0, 1, 0xFF, 1, b'T', b'T', 0, 0, 0, 0, 0, 0, 0,
        1,
    ];
    let mut buf = BytesMut::new();
    nested.encode(&mut buf);
    assert_eq!(&buf[..], &wire[..]);
    assert_eq!(FieldTable::decode(&wire).unwrap(), nested);
}

#[test]
fn content_header_frame() {
    let props = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    assert!(props.is_persistent());
    let frame = Frame::Header {
        channel: 1,
        class_id: 60,
        body_size: 5,
        properties: props,
    };
    let wire = [
        0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0F, // header frame, ch 1, size 15
        0x00, 0x3C, 0x00, 0x00, // class 60, weight 0
        0, 0, 0, 0, 0, 0, 0, 5, // body size
        0x10, 0x00, // flags: delivery-mode (bit 12)
        0x02, // persistent
        0xCE,
    ];
    assert_eq!(frame_bytes(&frame), wire);
    let mut src = BytesMut::from(&wire[..]);
    assert_eq!(decode_frame(&mut src, 0).unwrap(), Some(frame));
}

#[test]
fn encode_content_splits_body() {
    let deliver = BasicDeliver {
        consumer_tag: ShortStr::from_static("c"),
        delivery_tag: 1,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    // frame_max 10 => 2-byte body frames.
    encode_content(
        3,
        &deliver.into(),
        &BasicProperties::default(),
        b"abcde",
        10,
        &mut buf,
    );
    let mut frames = Vec::new();
    while let Some(f) = decode_frame(&mut buf, 0).unwrap() {
        frames.push(f);
    }
    let bodies: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Body { payload, .. } => Some(payload.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, vec![b"ab".to_vec(), b"cd".to_vec(), b"e".to_vec()]);
    assert!(matches!(
        frames[1],
        Frame::Header {
            class_id: 60,
            body_size: 5,
            ..
        }
    ));

    let mut buf = BytesMut::new();
    encode_content(
        3,
        &BasicPublish::default().into(),
        &BasicProperties::default(),
        b"",
        4096,
        &mut buf,
    );
    let mut count = 0;
    while decode_frame(&mut buf, 0).unwrap().is_some() {
        count += 1;
    }
    assert_eq!(count, 2, "empty body: method + header, no body frame");
}

#[test]
fn reply_codes() {
    assert_eq!(reply_code::NOT_FOUND, 404);
    assert_eq!(reply_code::UNEXPECTED_FRAME, 505);
    assert_eq!(reply_code::name(406), "PRECONDITION_FAILED");
    assert!(reply_code::is_hard_error(501));
    assert!(!reply_code::is_hard_error(404));
}

#[test]
fn shortstr_limits() {
    assert!(ShortStr::new("x".repeat(255)).is_ok());
    assert_eq!(ShortStr::new("x".repeat(256)), Err(TooLong(256)));
    let t = ShortStr::truncating("é".repeat(200));
    assert!(t.len() <= 255 && t.len().is_multiple_of(2));
    assert_eq!(ShortStr::try_from("abc").unwrap().as_str(), "abc");
    assert_eq!(ShortStr::from_static("q").to_string(), "q");
}
