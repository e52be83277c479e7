//! CommandAssembler error paths and channel bookkeeping.

use bytes::Bytes;
use protocol_amqp::*;

fn publish(channel: ChannelId) -> Frame {
    Frame::Method {
        channel,
        method: BasicPublish::default().into(),
    }
}

fn header(channel: ChannelId, body_size: u64) -> Frame {
    Frame::Header {
        channel,
        class_id: 60,
        body_size,
        properties: BasicProperties::default(),
    }
}

fn body(channel: ChannelId, b: &'static [u8]) -> Frame {
    Frame::Body {
        channel,
        payload: Bytes::from_static(b),
    }
}

#[test]
fn non_content_method_completes_immediately() {
    let mut asm = CommandAssembler::new();
    let cmd = asm
        .feed(Frame::Method {
            channel: 0,
            method: ConnectionCloseOk.into(),
        })
        .unwrap()
        .unwrap();
    assert_eq!(cmd.content, None);
    assert_eq!(asm.feed(Frame::Heartbeat { channel: 0 }), Ok(None));
}

#[test]
fn header_without_method_is_505() {
    let mut asm = CommandAssembler::new();
    let err = asm.feed(header(1, 3)).unwrap_err();
    assert_eq!(err, AssemblyError::UnexpectedHeader { channel: 1 });
    assert_eq!(err.reply_code(), reply_code::UNEXPECTED_FRAME);
    assert_eq!(err.channel(), 1);
}

#[test]
fn body_without_header_is_505() {
    let mut asm = CommandAssembler::new();
    assert_eq!(asm.feed(body(2, b"x")).unwrap_err().reply_code(), 505);
    asm.feed(publish(2)).unwrap();
    let err = asm.feed(body(2, b"x")).unwrap_err();
    assert_eq!(err, AssemblyError::UnexpectedBody { channel: 2 });
    assert!(!asm.is_pending(2), "error drops the channel state");
}

#[test]
fn method_during_content_is_505() {
    let mut asm = CommandAssembler::new();
    asm.feed(publish(1)).unwrap();
    asm.feed(header(1, 10)).unwrap();
    asm.feed(body(1, b"abc")).unwrap();
    let err = asm.feed(publish(1)).unwrap_err();
    assert_eq!(
        err,
        AssemblyError::UnexpectedMethod {
            channel: 1,
            method: "basic.publish"
        }
    );
    assert_eq!(err.reply_code(), 505);
}

#[test]
fn second_header_is_505() {
    let mut asm = CommandAssembler::new();
    asm.feed(publish(1)).unwrap();
    asm.feed(header(1, 10)).unwrap();
    assert_eq!(asm.feed(header(1, 10)).unwrap_err().reply_code(), 505);
}

#[test]
fn class_mismatch_is_505() {
    let mut asm = CommandAssembler::new();
    asm.feed(publish(1)).unwrap();
    let frame = Frame::Header {
        channel: 1,
        class_id: 50,
        body_size: 0,
        properties: BasicProperties::default(),
    };
    let err = asm.feed(frame).unwrap_err();
    assert_eq!(
        err,
        AssemblyError::ClassMismatch {
            channel: 1,
            expected: 60,
            got: 50
        }
    );
    assert_eq!(err.reply_code(), 505);
}

#[test]
fn body_overrun_is_501() {
    let mut asm = CommandAssembler::new();
    asm.feed(publish(1)).unwrap();
    asm.feed(header(1, 4)).unwrap();
    asm.feed(body(1, b"abc")).unwrap();
    let err = asm.feed(body(1, b"de")).unwrap_err();
    assert_eq!(
        err,
        AssemblyError::BodyOverrun {
            channel: 1,
            body_size: 4
        }
    );
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
}

#[test]
fn body_too_large_is_406_at_the_header() {
    let mut asm = CommandAssembler::new().with_max_body(100);
    asm.feed(publish(7)).unwrap();
    let err = asm.feed(header(7, 101)).unwrap_err();
    assert_eq!(
        err,
        AssemblyError::BodyTooLarge {
            channel: 7,
            size: 101,
            max: 100
        }
    );
    assert_eq!(err.reply_code(), reply_code::PRECONDITION_FAILED);
    assert!(!asm.is_pending(7));
    // Exactly the limit is fine.
    asm.feed(publish(7)).unwrap();
    assert_eq!(asm.feed(header(7, 100)), Ok(None));
    assert_eq!(CommandAssembler::new().max_body(), DEFAULT_MAX_BODY);
}

#[test]
fn channels_interleave_and_reset() {
    let mut asm = CommandAssembler::new();
    asm.feed(publish(1)).unwrap();
    asm.feed(publish(2)).unwrap();
    asm.feed(header(1, 4)).unwrap();
    asm.feed(header(2, 2)).unwrap();
    asm.feed(body(1, b"ab")).unwrap();
    let two = asm.feed(body(2, b"xy")).unwrap().unwrap();
    assert_eq!(two.channel, 2);
    assert_eq!(&two.content.unwrap().body[..], b"xy");
    let one = asm.feed(body(1, b"cd")).unwrap().unwrap();
    assert_eq!(&one.content.unwrap().body[..], b"abcd");

    asm.feed(publish(3)).unwrap();
    assert!(asm.is_pending(3));
    asm.reset_channel(3);
    assert!(!asm.is_pending(3));
    assert!(
        asm.feed(Frame::Method {
            channel: 3,
            method: ChannelCloseOk.into()
        })
        .unwrap()
        .is_some()
    );
}

#[test]
fn empty_body_completes_at_header_and_empty_body_frames_are_harmless() {
    let mut asm = CommandAssembler::new();
    asm.feed(publish(1)).unwrap();
    let cmd = asm.feed(header(1, 0)).unwrap().unwrap();
    assert!(cmd.content.unwrap().body.is_empty());

    asm.feed(publish(1)).unwrap();
    asm.feed(header(1, 2)).unwrap();
    assert_eq!(asm.feed(body(1, b"")), Ok(None));
    assert_eq!(asm.feed(body(1, b"a")), Ok(None));
    assert_eq!(asm.feed(body(1, b"")), Ok(None));
    let cmd = asm.feed(body(1, b"b")).unwrap().unwrap();
    assert_eq!(&cmd.content.unwrap().body[..], b"ab");
}
