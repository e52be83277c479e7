//! Class 85, confirm: RabbitMQ's publisher confirms extension.

use bytes::BytesMut;

use super::{Args, empty_method};
use crate::codec::{Reader, put_bits};
use crate::error::SyntaxError;

/// Puts the channel in confirm mode: the broker acks/nacks each publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfirmSelect {
    /// Do not send select-ok.
    pub nowait: bool,
}

impl Args for ConfirmSelect {
    fn write(&self, dst: &mut BytesMut) {
        put_bits(dst, &[self.nowait]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let [nowait] = r.bits()?;
        Ok(ConfirmSelect { nowait })
    }
}

empty_method!(
    /// Confirms the channel is now in confirm mode.
    ConfirmSelectOk
);
