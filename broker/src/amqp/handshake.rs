//! Connection start: protocol header, start/start-ok (authentication), tune/tune-ok, open.

use std::time::Duration;

use bytes::Bytes;
use protocol_amqp::{
    ConnectionOpen, ConnectionOpenOk, ConnectionStart, ConnectionTune, FRAME_MIN_SIZE, FieldTable,
    FieldValue, Frame, Method, ShortStr, reply_code,
};

use super::connection::{Conn, Reader};
use crate::core::access::LoginRefused;
use crate::error::AmqpError;

/// How long a client may take for each handshake step.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client told us about itself.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ClientCaps {
    pub consumer_cancel_notify: bool,
    pub connection_blocked: bool,
    pub authentication_failure_close: bool,
}

/// How a handshake ended early.
pub(crate) enum HandshakeEnd {
    /// Protocol error: send connection.close with it.
    Error(AmqpError),
    /// Just drop the socket (auth failure for clients that don't understand a close, I/O).
    Drop,
}

impl From<AmqpError> for HandshakeEnd {
    fn from(e: AmqpError) -> Self {
        HandshakeEnd::Error(e)
    }
}

fn server_properties() -> FieldTable {
    let mut caps = FieldTable::new();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        caps.insert(ShortStr::from_static(cap), FieldValue::Bool(true));
    }
    let mut props = FieldTable::new();
    props.insert(
        ShortStr::from_static("capabilities"),
        FieldValue::Table(caps),
    );
    let text = |s: &'static str| FieldValue::LongStr(Bytes::from_static(s.as_bytes()));
    props.insert(ShortStr::from_static("product"), text("broker"));
    props.insert(
        ShortStr::from_static("version"),
        text(env!("CARGO_PKG_VERSION")),
    );
    props.insert(ShortStr::from_static("platform"), text("Rust"));
    props.insert(ShortStr::from_static("cluster_name"), text("broker"));
    props.insert(
        ShortStr::from_static("copyright"),
        text("The broker authors"),
    );
    props.insert(
        ShortStr::from_static("information"),
        text("AMQP 0-9-1 and MQTT broker"),
    );
    props
}

fn bool_field(table: &FieldTable, key: &str) -> bool {
    matches!(table.get(key), Some(FieldValue::Bool(true)))
}

fn field_text(table: &FieldTable, key: &str) -> Option<Vec<u8>> {
    match table.get(key)? {
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// Extracts user and password from a PLAIN or AMQPLAIN response.
fn credentials(mechanism: &str, response: &[u8]) -> Option<(String, String)> {
    match mechanism {
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let _authzid = parts.next()?;
            let user = parts.next()?;
            let pass = parts.next()?;
            Some((
                String::from_utf8(user.to_vec()).ok()?,
                String::from_utf8(pass.to_vec()).ok()?,
            ))
        }
        "AMQPLAIN" => {
            // A field table without its length prefix.
            let len = u32::try_from(response.len()).ok()?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(response);
            let table = FieldTable::decode(&framed).ok()?;
            let user = field_text(&table, "LOGIN")?;
            let pass = field_text(&table, "PASSWORD")?;
            Some((String::from_utf8(user).ok()?, String::from_utf8(pass).ok()?))
        }
        _ => None,
    }
}

fn not_allowed(what: impl std::fmt::Display) -> AmqpError {
    AmqpError::connection(reply_code::NOT_ALLOWED, "NOT_ALLOWED", what)
}

impl Conn {
    /// Reads the next method on channel 0 during the handshake.
    async fn handshake_method(
        &mut self,
        reader: &mut Reader,
        expected: &str,
    ) -> Result<Method, HandshakeEnd> {
        loop {
            let frame = match tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                futures_util::StreamExt::next(reader),
            )
            .await
            {
                Err(_) => {
                    tracing::info!(peer = %self.peer, "handshake timed out waiting for {expected}");
                    return Err(HandshakeEnd::Drop);
                }
                Ok(None) => return Err(HandshakeEnd::Drop),
                Ok(Some(Err(e))) => return Err(HandshakeEnd::Error(Conn::decode_error(e)?)),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Frame::Heartbeat { channel: 0 } => continue,
                Frame::Method { channel: 0, method } => return Ok(method),
                _ => {
                    return Err(AmqpError::connection(
                        reply_code::UNEXPECTED_FRAME,
                        "UNEXPECTED_FRAME",
                        format!("expected '{expected}' on channel 0"),
                    )
                    .into());
                }
            }
        }
    }

    /// Runs start → tune → open. On success the connection is ready for channels.
    pub(crate) async fn handshake(&mut self, reader: &mut Reader) -> Result<(), HandshakeEnd> {
        self.send_method(
            0,
            ConnectionStart {
                version_major: 0,
                version_minor: 9,
                server_properties: server_properties(),
                mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
                locales: Bytes::from_static(b"en_US"),
            }
            .into(),
        );
        self.flush().await.map_err(|_| HandshakeEnd::Drop)?;

        let Method::ConnectionStartOk(start_ok) =
            self.handshake_method(reader, "connection.start-ok").await?
        else {
            return Err(AmqpError::connection(
                reply_code::COMMAND_INVALID,
                "COMMAND_INVALID",
                "expected 'connection.start-ok'",
            )
            .into());
        };
        if let Some(FieldValue::Table(caps)) = start_ok.client_properties.get("capabilities") {
            self.caps.consumer_cancel_notify = bool_field(caps, "consumer_cancel_notify");
            self.caps.connection_blocked = bool_field(caps, "connection.blocked");
            self.caps.authentication_failure_close =
                bool_field(caps, "authentication_failure_close");
        }
        let mechanism = start_ok.mechanism.as_str();
        if mechanism != "PLAIN" && mechanism != "AMQPLAIN" {
            return Err(AmqpError::connection(
                reply_code::COMMAND_INVALID,
                "COMMAND_INVALID",
                format!("unknown authentication mechanism '{mechanism}'"),
            )
            .into());
        }
        if let Some(name) = field_text(&start_ok.client_properties, "connection_name") {
            self.client_name = Some(String::from_utf8_lossy(&name).into_owned());
        }
        let accepted = match credentials(mechanism, &start_ok.response) {
            Some((user, pass)) => {
                let result = self
                    .core
                    .access
                    .authenticate(&user, &pass, self.peer.ip())
                    .await;
                match result {
                    Ok(_) => {}
                    Err(LoginRefused::BadCredentials) => {
                        tracing::warn!(peer = %self.peer, %user, "login refused: bad credentials");
                    }
                    Err(LoginRefused::LoopbackOnly) => {
                        tracing::warn!(peer = %self.peer, %user, "login refused: user may only connect from loopback");
                    }
                }
                self.user = user;
                result.is_ok()
            }
            None => {
                tracing::warn!(peer = %self.peer, mechanism, "malformed authentication response");
                false
            }
        };
        if !accepted {
            if self.caps.authentication_failure_close {
                return Err(AmqpError::connection(
                    reply_code::ACCESS_REFUSED,
                    "ACCESS_REFUSED",
                    format!("Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."),
                )
                .into());
            }
            return Err(HandshakeEnd::Drop);
        }

        self.send_method(
            0,
            ConnectionTune {
                channel_max: self.limits.channel_max,
                frame_max: self.limits.frame_max,
                heartbeat: self.limits.heartbeat,
            }
            .into(),
        );
        self.flush().await.map_err(|_| HandshakeEnd::Drop)?;
        let Method::ConnectionTuneOk(tune_ok) =
            self.handshake_method(reader, "connection.tune-ok").await?
        else {
            return Err(AmqpError::connection(
                reply_code::COMMAND_INVALID,
                "COMMAND_INVALID",
                "expected 'connection.tune-ok'",
            )
            .into());
        };
        let ours = self.limits;
        if tune_ok.frame_max != 0 && tune_ok.frame_max < FRAME_MIN_SIZE {
            return Err(not_allowed(format!(
                "frame_max={} < {FRAME_MIN_SIZE} min size",
                tune_ok.frame_max
            ))
            .into());
        }
        if ours.frame_max != 0 && (tune_ok.frame_max == 0 || tune_ok.frame_max > ours.frame_max) {
            return Err(not_allowed(format!(
                "frame_max={} > {} max size",
                tune_ok.frame_max, ours.frame_max
            ))
            .into());
        }
        if tune_ok.channel_max > ours.channel_max
            || (ours.channel_max != 0 && tune_ok.channel_max == 0)
        {
            return Err(not_allowed(format!(
                "channel_max={} > {} max",
                tune_ok.channel_max, ours.channel_max
            ))
            .into());
        }
        self.frame_max = tune_ok.frame_max;
        self.channel_max = tune_ok.channel_max;
        self.heartbeat = tune_ok.heartbeat;
        reader.decoder_mut().frame_max = tune_ok.frame_max;

        let Method::ConnectionOpen(ConnectionOpen { virtual_host, .. }) =
            self.handshake_method(reader, "connection.open").await?
        else {
            return Err(AmqpError::connection(
                reply_code::COMMAND_INVALID,
                "COMMAND_INVALID",
                "expected 'connection.open'",
            )
            .into());
        };
        // RabbitMQ's text (rabbit_reader), unquoted.
        let Some(vhost) = self.core.vhost(virtual_host.as_str()) else {
            tracing::warn!(peer = %self.peer, user = %self.user, vhost = virtual_host.as_str(), "connection.open to a missing vhost");
            return Err(not_allowed(format!("vhost {} not found", virtual_host.as_str())).into());
        };
        if self
            .core
            .access
            .permission(&self.user, virtual_host.as_str())
            .is_none()
        {
            tracing::warn!(peer = %self.peer, user = %self.user, vhost = virtual_host.as_str(), "vhost access refused");
            return Err(not_allowed(format!(
                "access to vhost '{}' refused for user '{}'",
                virtual_host.as_str(),
                self.user
            ))
            .into());
        }
        self.vhost = Some(vhost);
        self.send_method(0, ConnectionOpenOk {}.into());
        self.flush().await.map_err(|_| HandshakeEnd::Drop)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::credentials;

    #[test]
    fn plain_and_amqplain_credentials() {
        assert_eq!(
            credentials("PLAIN", b"\0guest\0guest"),
            Some(("guest".into(), "guest".into()))
        );
        assert_eq!(credentials("PLAIN", b"guest"), None);
        // AMQPLAIN: LOGIN S "guest", PASSWORD S "pw"
        let mut t = Vec::new();
        t.push(5);
        t.extend_from_slice(b"LOGIN");
        t.push(b'S');
        t.extend_from_slice(&5u32.to_be_bytes());
        t.extend_from_slice(b"guest");
        t.push(8);
        t.extend_from_slice(b"PASSWORD");
        t.push(b'S');
        t.extend_from_slice(&2u32.to_be_bytes());
        t.extend_from_slice(b"pw");
        assert_eq!(
            credentials("AMQPLAIN", &t),
            Some(("guest".into(), "pw".into()))
        );
    }
}
