//! Configuration-space accesses as PPCs to a device model (hosted mode).
//!
//! On seL4 the `pci` PD reads and writes ECAM directly. In hosted mode there is no ECAM: the GSP
//! model PD presents an emulated PCIe topology and `pci` reaches it over its channel to the model,
//! one PPC per access:
//!
//! | label            | MR0                 | MR1    | MR2             | MR3   |
//! |------------------|---------------------|--------|-----------------|-------|
//! | [`ConfigOp::Read`]  | routing id (`Bdf`) | offset | width in bytes  |       |
//! | [`ConfigOp::Write`] | routing id (`Bdf`) | offset | width in bytes  | value |
//!
//! The reply label is 0 and MR0 the value read (all ones for an absent function, as hardware
//! answers), or the label is a [`ConfigError`] discriminant.

use crate::bdf::{access_ok, Bdf, Width};
use core::fmt;
use pd_core::{Channel, Kernel, MessageInfo, MessageRegisters};

/// The operation, carried in the PPC label. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ConfigOp {
    /// Read `width` bytes at `offset`.
    Read = 1,
    /// Write `width` bytes at `offset`.
    Write = 2,
}

impl TryFrom<u64> for ConfigOp {
    type Error = ConfigError;
    fn try_from(label: u64) -> Result<Self, ConfigError> {
        match label {
            1 => Ok(Self::Read),
            2 => Ok(Self::Write),
            _ => Err(ConfigError::BadRequest),
        }
    }
}

/// Why a configuration access failed. Discriminants start at 1 (0 = success on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ConfigError {
    /// The offset is misaligned for the width or leaves the 4 KiB configuration space.
    BadOffset = 1,
    /// The width is not 1, 2 or 4 bytes, or the value does not fit it.
    BadWidth = 2,
    /// Unknown operation or too few message registers.
    BadRequest = 3,
    /// The access never reached the device: the PPC failed or the backend is gone.
    Transport = 4,
}

impl ConfigError {
    /// The error a reply label names (unknown codes read as [`ConfigError::Transport`]).
    pub fn from_wire(label: u64) -> Self {
        match label {
            1 => Self::BadOffset,
            2 => Self::BadWidth,
            3 => Self::BadRequest,
            _ => Self::Transport,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadOffset => "offset misaligned or outside configuration space",
            Self::BadWidth => "bad access width",
            Self::BadRequest => "malformed configuration request",
            Self::Transport => "configuration access did not reach the device",
        })
    }
}

/// One configuration access, as both ends see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigRequest {
    /// Read or write.
    pub op: ConfigOp,
    /// The function addressed.
    pub bdf: Bdf,
    /// Byte offset in its configuration space.
    pub offset: u16,
    /// Access width.
    pub width: Width,
    /// The value to write (0 for a read).
    pub value: u32,
}

impl ConfigRequest {
    /// Check an access's offset and width.
    ///
    /// # Errors
    /// [`ConfigError::BadOffset`] when misaligned or outside 4 KiB.
    pub fn check(offset: u16, width: Width) -> Result<(), ConfigError> {
        if access_ok(offset, width) {
            Ok(())
        } else {
            Err(ConfigError::BadOffset)
        }
    }

    /// Put the request into `mrs`; returns the message info to call with.
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        mrs.set(0, u64::from(self.bdf.routing_id()));
        mrs.set(1, u64::from(self.offset));
        mrs.set(2, u64::from(self.width.bytes()));
        match self.op {
            ConfigOp::Read => MessageInfo::new(ConfigOp::Read as u64, 3),
            ConfigOp::Write => {
                mrs.set(3, u64::from(self.value));
                MessageInfo::new(ConfigOp::Write as u64, 4)
            }
        }
    }

    /// Decode a request the model received (the callee's side).
    ///
    /// # Errors
    /// [`ConfigError::BadRequest`] for an unknown label, too few registers or a bad routing id;
    /// [`ConfigError::BadWidth`] for a width other than 1/2/4 or a value wider than it;
    /// [`ConfigError::BadOffset`] for a misaligned or out-of-range offset.
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, ConfigError> {
        let op = ConfigOp::try_from(msg.label())?;
        let needed = match op {
            ConfigOp::Read => 3,
            ConfigOp::Write => 4,
        };
        if msg.count() < needed {
            return Err(ConfigError::BadRequest);
        }
        let bdf = Bdf::from_wire(mrs.get(0)).ok_or(ConfigError::BadRequest)?;
        let offset = u16::try_from(mrs.get(1)).map_err(|_| ConfigError::BadOffset)?;
        let width = Width::from_bytes(mrs.get(2)).ok_or(ConfigError::BadWidth)?;
        Self::check(offset, width)?;
        let value = match op {
            ConfigOp::Read => 0,
            ConfigOp::Write => u32::try_from(mrs.get(3))
                .ok()
                .filter(|v| v & !width.mask() == 0)
                .ok_or(ConfigError::BadWidth)?,
        };
        Ok(Self {
            op,
            bdf,
            offset,
            width,
            value,
        })
    }

    /// Encode the callee's reply: the value read (0 for a write), or the error.
    pub fn reply(result: Result<u32, ConfigError>, mrs: &mut MessageRegisters) -> MessageInfo {
        match result {
            Ok(v) => {
                mrs.set(0, u64::from(v));
                MessageInfo::new(0, 1)
            }
            Err(e) => MessageInfo::new(e as u64, 0),
        }
    }
}

/// The caller's stub: configuration accesses over the channel to a device model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigClient {
    ch: Channel,
}

impl ConfigClient {
    /// Accesses go over `ch` (the `pci` end of the channel to the model).
    pub const fn new(ch: Channel) -> Self {
        Self { ch }
    }

    /// Read `width` bytes at `offset` of `bdf`; absent functions read all ones.
    ///
    /// # Errors
    /// [`ConfigError::BadOffset`] before calling when the access is malformed;
    /// [`ConfigError::Transport`] when the PPC fails; otherwise the model's error.
    pub fn read(
        &self,
        k: &mut dyn Kernel,
        bdf: Bdf,
        offset: u16,
        width: Width,
    ) -> Result<u32, ConfigError> {
        let req = ConfigRequest {
            op: ConfigOp::Read,
            bdf,
            offset,
            width,
            value: 0,
        };
        self.call(k, &req)
    }

    /// Write `value` (`width` bytes) at `offset` of `bdf`.
    ///
    /// # Errors
    /// As [`ConfigClient::read`], plus [`ConfigError::BadWidth`] when `value` is wider than `width`.
    pub fn write(
        &self,
        k: &mut dyn Kernel,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        if value & !width.mask() != 0 {
            return Err(ConfigError::BadWidth);
        }
        let req = ConfigRequest {
            op: ConfigOp::Write,
            bdf,
            offset,
            width,
            value,
        };
        self.call(k, &req).map(|_| ())
    }

    fn call(&self, k: &mut dyn Kernel, req: &ConfigRequest) -> Result<u32, ConfigError> {
        ConfigRequest::check(req.offset, req.width)?;
        let info = req.encode(k.mrs());
        let reply = k
            .ppcall(self.ch, info)
            .map_err(|_| ConfigError::Transport)?;
        match reply.label() {
            0 => u32::try_from(k.mrs().get(0)).map_err(|_| ConfigError::Transport),
            e => Err(ConfigError::from_wire(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_of(label: u64, regs: &[u64]) -> Result<ConfigRequest, ConfigError> {
        let mut mrs = MessageRegisters::default();
        for (i, r) in regs.iter().enumerate() {
            mrs.set(i, *r);
        }
        ConfigRequest::decode(MessageInfo::new(label, regs.len()), &mrs)
    }

    #[test]
    fn requests_round_trip() {
        let bdf = Bdf::new(1, 0, 1).unwrap();
        for req in [
            ConfigRequest {
                op: ConfigOp::Read,
                bdf,
                offset: 0x100,
                width: Width::U32,
                value: 0,
            },
            ConfigRequest {
                op: ConfigOp::Write,
                bdf,
                offset: 0x4,
                width: Width::U16,
                value: 0x406,
            },
        ] {
            let mut mrs = MessageRegisters::default();
            let info = req.encode(&mut mrs);
            assert_eq!(ConfigRequest::decode(info, &mrs), Ok(req));
        }
    }

    #[test]
    fn hostile_requests_get_typed_errors() {
        assert_eq!(decode_of(9, &[0, 0, 4]), Err(ConfigError::BadRequest));
        assert_eq!(decode_of(1, &[0, 0]), Err(ConfigError::BadRequest));
        assert_eq!(
            decode_of(1, &[0x1_0000, 0, 4]),
            Err(ConfigError::BadRequest)
        );
        assert_eq!(decode_of(1, &[0, 2, 4]), Err(ConfigError::BadOffset));
        assert_eq!(decode_of(1, &[0, 0x1000, 1]), Err(ConfigError::BadOffset));
        assert_eq!(decode_of(1, &[0, 1 << 20, 1]), Err(ConfigError::BadOffset));
        assert_eq!(decode_of(1, &[0, 0, 3]), Err(ConfigError::BadWidth));
        assert_eq!(decode_of(2, &[0, 0, 1, 0x100]), Err(ConfigError::BadWidth));
        assert_eq!(ConfigError::from_wire(77), ConfigError::Transport);
    }

    #[test]
    fn replies_carry_value_or_error() {
        let mut mrs = MessageRegisters::default();
        let ok = ConfigRequest::reply(Ok(0xdead_beef), &mut mrs);
        assert_eq!((ok.label(), mrs.get(0)), (0, 0xdead_beef));
        let err = ConfigRequest::reply(Err(ConfigError::BadWidth), &mut mrs);
        assert_eq!(ConfigError::from_wire(err.label()), ConfigError::BadWidth);
    }
}
