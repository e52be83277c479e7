//! Class 30, access: obsolete ticket requests that old clients still send;
//! RabbitMQ answers them with ticket 1.

use bytes::{BufMut, BytesMut};

use super::Args;
use crate::codec::{Reader, put_bits, put_shortstr};
use crate::error::SyntaxError;
use crate::types::ShortStr;

/// Obsolete request for an access ticket to a realm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccessRequest {
    /// Realm name.
    pub realm: ShortStr,
    /// Exclusive access.
    pub exclusive: bool,
    /// Passive access.
    pub passive: bool,
    /// Active access.
    pub active: bool,
    /// Write access.
    pub write: bool,
    /// Read access.
    pub read: bool,
}

impl Args for AccessRequest {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.realm);
        put_bits(
            dst,
            &[
                self.exclusive,
                self.passive,
                self.active,
                self.write,
                self.read,
            ],
        );
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let realm = r.shortstr()?;
        let [exclusive, passive, active, write, read] = r.bits()?;
        Ok(AccessRequest {
            realm,
            exclusive,
            passive,
            active,
            write,
            read,
        })
    }
}

/// Grants an access ticket (RabbitMQ always sends 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessRequestOk {
    /// The ticket, ignored by every later method.
    pub ticket: u16,
}

impl Args for AccessRequestOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(self.ticket);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(AccessRequestOk { ticket: r.u16()? })
    }
}
