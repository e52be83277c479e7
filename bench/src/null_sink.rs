//! A fake broker that answers just enough of AMQP 0-9-1 and MQTT for the
//! generator to run, and discards every message. Running producers against
//! it measures the generator's own ceiling.
//!
//! AMQP: handshake, channel.open, queue.declare/delete/bind/purge, basic.qos,
//! basic.consume (nothing is ever delivered), confirm.select (one
//! cumulative basic.ack per socket read), close. MQTT: CONNACK, SUBACK,
//! PUBACK / PUBREC / PUBCOMP, PINGRESP.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use protocol_amqp::{
    BasicAck, BasicConsumeOk, BasicQosOk, ChannelCloseOk, ChannelOpenOk, ConfirmSelectOk,
    ConnectionCloseOk, ConnectionOpenOk, ConnectionStart, ConnectionTune, FieldTable, Method,
    QueueBindOk, QueueDeclareOk, QueueDeleteOk, QueuePurgeOk, ShortStr, encode_method,
};
use protocol_mqtt::{
    ConnAck, Packet, ProtocolVersion, ReasonCode, SubAck, UnsubAck, decode, encode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result, io};

const READ_CHUNK: usize = 128 * 1024;

/// Binds the listeners (port 0 = none; `Some(0)` would pick a free port for
/// tests) and serves them on spawned tasks. Returns the bound addresses.
pub async fn start(
    bind: &str,
    amqp_port: Option<u16>,
    mqtt_port: Option<u16>,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>)> {
    let amqp = match amqp_port {
        Some(port) => Some(listen(bind, port, Proto::Amqp).await?),
        None => None,
    };
    let mqtt = match mqtt_port {
        Some(port) => Some(listen(bind, port, Proto::Mqtt).await?),
        None => None,
    };
    Ok((amqp, mqtt))
}

#[derive(Clone, Copy)]
enum Proto {
    Amqp,
    Mqtt,
}

async fn listen(bind: &str, port: u16, proto: Proto) -> Result<SocketAddr> {
    let listener = TcpListener::bind((bind, port))
        .await
        .map_err(io(format!("bind {bind}:{port}")))?;
    let addr = listener.local_addr().map_err(io("local_addr"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = match proto {
                    Proto::Amqp => serve_amqp(stream).await,
                    Proto::Mqtt => serve_mqtt(stream).await,
                };
            });
        }
    });
    Ok(addr)
}

async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<bool> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    Ok(stream.read_buf(buf).await.map_err(io("read"))? > 0)
}

async fn serve_amqp(mut stream: TcpStream) -> Result<()> {
    let mut buf = BytesMut::new();
    while buf.len() < 8 {
        if !read_more(&mut stream, &mut buf).await? {
            return Ok(());
        }
    }
    let _ = buf.split_to(8);
    let mut out = BytesMut::new();
    let start = ConnectionStart {
        server_properties: FieldTable::new(),
        mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
        locales: Bytes::from_static(b"en_US"),
        ..Default::default()
    };
    encode_method(0, &start.into(), &mut out);
    // Published messages per channel, for cumulative confirms.
    let mut published: Vec<u64> = vec![0; 8];
    let mut confirming: Vec<bool> = vec![false; 8];
    loop {
        let mut confirm_due = false;
        while let Some(frame) = crate::amqp::next_incoming(&mut buf)? {
            use crate::amqp::Incoming;
            let Incoming::Method(m) = frame else {
                if matches!(frame, Incoming::Publish) {
                    // Channel numbers are small here; channel 1 in practice.
                    published[1] += 1;
                    confirm_due |= confirming[1];
                }
                continue;
            };
            let (ch, reply): (u16, Option<Method>) = match m {
                Method::ConnectionStartOk(_) => (
                    0,
                    Some(
                        ConnectionTune {
                            channel_max: 7,
                            frame_max: 131_072,
                            heartbeat: 0,
                        }
                        .into(),
                    ),
                ),
                Method::ConnectionOpen(_) => (0, Some(ConnectionOpenOk.into())),
                Method::ConnectionClose(_) => {
                    encode_method(0, &ConnectionCloseOk.into(), &mut out);
                    let _ = stream.write_all(&out).await;
                    return Ok(());
                }
                Method::ChannelOpen(_) => (1, Some(ChannelOpenOk.into())),
                Method::ChannelClose(_) => (1, Some(ChannelCloseOk.into())),
                Method::QueueDeclare(d) => (
                    1,
                    Some(
                        QueueDeclareOk {
                            queue: d.queue,
                            message_count: 0,
                            consumer_count: 0,
                        }
                        .into(),
                    ),
                ),
                Method::QueueDelete(_) => (1, Some(QueueDeleteOk::default().into())),
                Method::QueuePurge(_) => (1, Some(QueuePurgeOk::default().into())),
                Method::QueueBind(_) => (1, Some(QueueBindOk.into())),
                Method::BasicQos(_) => (1, Some(BasicQosOk.into())),
                Method::BasicConsume(c) => (
                    1,
                    Some(
                        BasicConsumeOk {
                            consumer_tag: if c.consumer_tag.is_empty() {
                                ShortStr::from_static("null-sink")
                            } else {
                                c.consumer_tag
                            },
                        }
                        .into(),
                    ),
                ),
                Method::ConfirmSelect(_) => {
                    confirming[1] = true;
                    (1, Some(ConfirmSelectOk.into()))
                }
                _ => (0, None),
            };
            if let Some(reply) = reply {
                encode_method(ch, &reply, &mut out);
            }
        }
        if confirm_due {
            let ack = BasicAck {
                delivery_tag: published[1],
                multiple: true,
            };
            encode_method(1, &ack.into(), &mut out);
        }
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(io("write"))?;
            out.clear();
        }
        if !read_more(&mut stream, &mut buf).await? {
            return Ok(());
        }
    }
}

async fn serve_mqtt(mut stream: TcpStream) -> Result<()> {
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let version = loop {
        match decode(&mut buf, None, crate::mqtt::MAX_PACKET)? {
            Some(Packet::Connect(c)) => break c.version,
            Some(other) => return Err(Error::Protocol(format!("first packet {}", other.name()))),
            None => {
                if !read_more(&mut stream, &mut buf).await? {
                    return Ok(());
                }
            }
        }
    };
    let connack = ConnAck {
        session_present: false,
        code: ReasonCode::SUCCESS,
        properties: Default::default(),
    };
    encode(&Packet::ConnAck(connack), version, &mut out)?;
    loop {
        while let Some(p) = crate::mqtt::next_incoming(&mut buf, version)? {
            use crate::mqtt::{Incoming, ack, put_ack};
            match p {
                Incoming::Publish {
                    qos: 1, packet_id, ..
                } => put_ack(&mut out, ack::PUBACK, packet_id),
                Incoming::Publish {
                    qos: 2, packet_id, ..
                } => put_ack(&mut out, ack::PUBREC, packet_id),
                Incoming::PubRel(id) => put_ack(&mut out, ack::PUBCOMP, id),
                Incoming::Other(p) => match *p {
                    Packet::Subscribe(s) => {
                        let suback = SubAck {
                            packet_id: s.packet_id,
                            properties: Default::default(),
                            reason_codes: s
                                .filters
                                .iter()
                                .map(|f| ReasonCode::granted(f.options.qos))
                                .collect(),
                        };
                        encode(&Packet::SubAck(suback), version, &mut out)?;
                    }
                    Packet::Unsubscribe(u) => {
                        let unsuback = UnsubAck {
                            packet_id: u.packet_id,
                            properties: Default::default(),
                            reason_codes: match version {
                                ProtocolVersion::V5 => vec![ReasonCode::SUCCESS; u.filters.len()],
                                ProtocolVersion::V311 => Vec::new(),
                            },
                        };
                        encode(&Packet::UnsubAck(unsuback), version, &mut out)?;
                    }
                    Packet::PingReq => encode(&Packet::PingResp, version, &mut out)?,
                    Packet::Disconnect(_) => return Ok(()),
                    _ => {}
                },
                _ => {}
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(io("write"))?;
            out.clear();
        }
        if !read_more(&mut stream, &mut buf).await? {
            return Ok(());
        }
    }
}
