//! Class 20, channel: open, flow control, close.

use bytes::{BufMut, BytesMut};

use super::{Args, empty_method};
use crate::codec::{Reader, put_bits, put_shortstr};
use crate::error::SyntaxError;
use crate::types::ShortStr;

/// Client opens a channel. Reserved `out-of-band` is written empty and
/// ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelOpen;

impl Args for ChannelOpen {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(0); // out-of-band: empty shortstr
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.shortstr()?;
        Ok(ChannelOpen)
    }
}

/// Server confirms the channel is open. Reserved `channel-id` is written
/// as an empty longstr and ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelOpenOk;

impl Args for ChannelOpenOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(0); // channel-id: empty longstr
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.long_slice()?;
        Ok(ChannelOpenOk)
    }
}

/// Either side pauses or resumes content flow on the channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelFlow {
    /// true = start sending, false = stop.
    pub active: bool,
}

impl Args for ChannelFlow {
    fn write(&self, dst: &mut BytesMut) {
        put_bits(dst, &[self.active]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let [active] = r.bits()?;
        Ok(ChannelFlow { active })
    }
}

/// Confirms a channel.flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelFlowOk {
    /// The flow state now in effect.
    pub active: bool,
}

impl Args for ChannelFlowOk {
    fn write(&self, dst: &mut BytesMut) {
        put_bits(dst, &[self.active]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let [active] = r.bits()?;
        Ok(ChannelFlowOk { active })
    }
}

/// Either side closes the channel, with the reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelClose {
    /// A [`crate::reply_code`] constant.
    pub reply_code: u16,
    /// `"NAME - explanation"`.
    pub reply_text: ShortStr,
    /// Class of the failing method, or 0.
    pub class_id: u16,
    /// Id of the failing method, or 0.
    pub method_id: u16,
}

impl Args for ChannelClose {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(self.reply_code);
        put_shortstr(dst, &self.reply_text);
        dst.put_u16(self.class_id);
        dst.put_u16(self.method_id);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ChannelClose {
            reply_code: r.u16()?,
            reply_text: r.shortstr()?,
            class_id: r.u16()?,
            method_id: r.u16()?,
        })
    }
}

empty_method!(
    /// Confirms a channel.close; the channel number may be reused.
    ChannelCloseOk
);
