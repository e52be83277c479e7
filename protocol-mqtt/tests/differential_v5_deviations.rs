//! AUTH and short DISCONNECT against rumqttc's 5.0 codec: the places where
//! rumqttc deviates from the spec (listed in `differential_v5.rs`), pinned
//! so a rumqttc fix shows up as a test failure here rather than silently.

use bytes::{Bytes, BytesMut};
use protocol_mqtt as ours;
use protocol_mqtt::{ProtocolVersion, ReasonCode, UserProperty};
use rumqttc::v5::mqttbytes::v5 as theirs;

const V5: ProtocolVersion = ProtocolVersion::V5;
const MAX: usize = 1 << 20;

fn up_ours() -> Vec<UserProperty> {
    vec![UserProperty::new("k", "v1"), UserProperty::new("k", "v2")]
}

fn up_theirs() -> Vec<(String, String)> {
    vec![("k".into(), "v1".into()), ("k".into(), "v2".into())]
}

fn our_decode(buf: &mut BytesMut) -> ours::Packet {
    let p = ours::decode(buf, Some(V5), MAX)
        .expect("our decode")
        .expect("whole");
    assert!(buf.is_empty());
    p
}

fn rumqttc_read_auth(o: &ours::Packet) -> Result<theirs::Auth, rumqttc::v5::mqttbytes::Error> {
    let mut buf = BytesMut::new();
    ours::encode(o, V5, &mut buf).expect("encode");
    // One-byte remaining length here; `Packet::read` cannot dispatch type 15.
    assert!(buf.len() < 129);
    let header = theirs::FixedHeader::new(buf[0], 1, buf.len() - 2);
    theirs::Auth::read(header, buf.freeze())
}

#[test]
fn auth_through_rumqttc_and_back() {
    let o = ours::Packet::Auth(ours::Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: ours::AuthProperties {
            authentication_data: Some(Bytes::from_static(b"client-first")),
            user_properties: up_ours(),
            ..Default::default()
        },
    });
    let t = rumqttc_read_auth(&o).expect("rumqttc Auth::read");
    assert_eq!(format!("{:?}", t.code), "Continue");
    let tp = t.properties.as_ref().expect("properties");
    assert_eq!(tp.data.as_deref(), Some(&b"client-first"[..]));
    assert_eq!(tp.user_properties, up_theirs());
    // rumqttc's AUTH writer miscounts any property (see the module doc),
    // so the way back is checked without properties.
    let mut t = t;
    t.properties = None;
    let mut back = BytesMut::new();
    theirs::Packet::Auth(t)
        .write(&mut back, None)
        .expect("rumqttc write");
    assert_eq!(&back[..], &[0xF0, 0x02, 0x18, 0x00]);
    let expected = ours::Packet::Auth(ours::Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Default::default(),
    });
    assert_eq!(our_decode(&mut back), expected);
}

/// rumqttc deviation: Authentication Method / Reason String in AUTH are
/// miscounted by its property reader.
#[test]
fn auth_method_rumqttc_deviation() {
    let o = ours::Packet::Auth(ours::Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: ours::AuthProperties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            ..Default::default()
        },
    });
    assert!(rumqttc_read_auth(&o).is_err());
}

/// rumqttc deviation: DISCONNECT with a reason code and no properties.
#[test]
fn reason_only_disconnect_rumqttc_deviation() {
    let t = theirs::Packet::Disconnect(theirs::Disconnect::new(
        theirs::DisconnectReasonCode::DisconnectWithWillMessage,
    ));
    let mut buf = BytesMut::new();
    t.write(&mut buf, None).expect("rumqttc write");
    assert_eq!(
        &buf[..],
        &[0xE0, 0x01, 0x04, 0x00],
        "remaining length 1, but 2 bytes follow"
    );
    let o = ours::Packet::Disconnect(ours::Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Default::default(),
    });
    let mut ours_buf = BytesMut::new();
    ours::encode(&o, V5, &mut ours_buf).expect("encode");
    assert_eq!(&ours_buf[..], &[0xE0, 0x01, 0x04]);
    // Our decoder reads the packet rumqttc framed (3 bytes), leaving its
    // stray byte behind as the start of the next packet.
    assert_eq!(ours::decode(&mut buf, Some(V5), MAX), Ok(Some(o)));
    assert_eq!(&buf[..], &[0x00]);
    assert!(
        theirs::Packet::read(&mut ours_buf, None).is_err(),
        "rumqttc wants a property length"
    );
}

/// rumqttc deviation: its `Packet::read` refuses remaining length 0 for
/// DISCONNECT, which 5.0 §3.14.2.1 allows (and rumqttc itself writes).
/// We accept its bytes; we do not bend our encoder to its reader.
#[test]
fn short_disconnect_rumqttc_deviation() {
    let mut buf = BytesMut::new();
    theirs::Packet::Disconnect(theirs::Disconnect::new(
        theirs::DisconnectReasonCode::NormalDisconnection,
    ))
    .write(&mut buf, None)
    .expect("rumqttc write");
    assert_eq!(&buf[..], &[0xE0, 0x00]);
    assert_eq!(
        our_decode(&mut buf.clone()),
        ours::Packet::Disconnect(Default::default())
    );
    assert!(
        theirs::Packet::read(&mut buf, None).is_err(),
        "rumqttc cannot read its own E0 00"
    );
}
