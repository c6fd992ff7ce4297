//! The PCI service: what a function driver asks the `pci` PD (one PPC per operation).
//!
//! | label ([`Op`])      | arguments (MR0..)                  | reply (MR0..)                          |
//! |---------------------|------------------------------------|----------------------------------------|
//! | `List`   = 1        | index                              | [`DeviceEntry`] (3 words), total count |
//! | `Claim`  = 2        | routing id                         | —                                      |
//! | `ReadConfig` = 3    | routing id, offset, width          | value                                  |
//! | `WriteConfig` = 4   | routing id, offset, width, value   | —                                      |
//! | `Bar`    = 5        | routing id, BAR index              | [`BarPlacement`] (4 words)             |
//! | `Release` = 6       | routing id                         | —                                      |
//!
//! The reply label is 0 or a [`PciError`] discriminant.

use crate::bdf::{Bdf, Width};
use core::fmt;
use pd_core::{Channel, Kernel, MessageInfo, MessageRegisters};

/// Operation codes (the PPC label). Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    /// The `index`-th function the server found.
    List = 1,
    /// Take a function for the caller (policy permitting).
    Claim = 2,
    /// Read the claimed function's configuration space.
    ReadConfig = 3,
    /// Write one of the registers a function driver may write.
    WriteConfig = 4,
    /// Where one BAR of the claimed function was placed.
    Bar = 5,
    /// Give a claimed function back (it is quiesced first, and reset if it can FLR).
    Release = 6,
}

impl TryFrom<u64> for Op {
    type Error = PciError;
    fn try_from(label: u64) -> Result<Self, PciError> {
        [
            Self::List,
            Self::Claim,
            Self::ReadConfig,
            Self::WriteConfig,
            Self::Bar,
            Self::Release,
        ]
        .into_iter()
        .find(|op| *op as u64 == label)
        .ok_or(PciError::BadRequest)
    }
}

/// Why a request was refused. Discriminants start at 1 (0 = success on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PciError {
    /// No function at that address, or the list index is past the end.
    NoSuchDevice = 1,
    /// The policy does not let this client claim that function.
    NotAllowed = 2,
    /// Another client holds the function.
    ClaimedByOther = 3,
    /// The caller already holds the function.
    AlreadyClaimed = 4,
    /// The caller does not hold the function.
    NotClaimed = 5,
    /// Not a register a function driver may write, or bits outside its writable set changed.
    RegisterNotWritable = 6,
    /// Unknown operation, too few message registers, or a malformed argument.
    BadRequest = 7,
    /// Offset misaligned for the width, or outside the function's configuration space.
    BadOffset = 8,
    /// The BAR index is out of range or the BAR is not implemented.
    NoSuchBar = 9,
    /// The server refused the function (its BARs did not fit the windows); it stays disabled.
    DeviceRefused = 10,
    /// The configuration access to the device failed.
    ConfigFailed = 11,
    /// The calling channel is not in the server's client table.
    UnknownClient = 12,
    /// The PPC itself failed (caller side: the server died or is restarting).
    Transport = 13,
}

impl PciError {
    /// The error a reply label names (unknown codes read as [`PciError::Transport`]).
    pub fn from_wire(label: u64) -> Self {
        use PciError::*;
        [
            NoSuchDevice,
            NotAllowed,
            ClaimedByOther,
            AlreadyClaimed,
            NotClaimed,
            RegisterNotWritable,
            BadRequest,
            BadOffset,
            NoSuchBar,
            DeviceRefused,
            ConfigFailed,
            UnknownClient,
        ]
        .into_iter()
        .find(|e| *e as u64 == label)
        .unwrap_or(Transport)
    }
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSuchDevice => "no such device",
            Self::NotAllowed => "policy does not allow this client to claim the device",
            Self::ClaimedByOther => "device claimed by another client",
            Self::AlreadyClaimed => "device already claimed by this client",
            Self::NotClaimed => "device not claimed by this client",
            Self::RegisterNotWritable => "register not writable by a function driver",
            Self::BadRequest => "malformed request",
            Self::BadOffset => "offset misaligned or outside configuration space",
            Self::NoSuchBar => "no such BAR",
            Self::DeviceRefused => "device refused: its BARs did not fit",
            Self::ConfigFailed => "configuration access failed",
            Self::UnknownClient => "unknown client channel",
            Self::Transport => "call to the pci server failed",
        })
    }
}

/// Facts about a listed function, as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceFlags(pub u8);

impl DeviceFlags {
    /// The policy lets the caller claim it.
    pub const ALLOWED: u8 = 1 << 0;
    /// The caller holds it.
    pub const CLAIMED_BY_YOU: u8 = 1 << 1;
    /// Another client holds it.
    pub const CLAIMED_BY_OTHER: u8 = 1 << 2;
    /// Its BARs did not fit: it is disabled.
    pub const REFUSED: u8 = 1 << 3;
    /// A PCI-to-PCI bridge or root port (never claimable).
    pub const BRIDGE: u8 = 1 << 4;

    /// Whether `bit` (one of the constants) is set.
    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// One function as `List` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Its address (after the server's bus numbering).
    pub bdf: Bdf,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Class code: base class, subclass, programming interface (24 bits).
    pub class: u32,
    /// Revision id.
    pub revision: u8,
    /// What the caller may do with it.
    pub flags: DeviceFlags,
}

impl DeviceEntry {
    /// Words in a reply.
    pub const WORDS: usize = 3;

    /// Write the entry into `mrs[at..at + 3]`.
    pub fn encode(&self, mrs: &mut MessageRegisters, at: usize) {
        mrs.set(at, u64::from(self.bdf.routing_id()));
        mrs.set(
            at + 1,
            u64::from(self.vendor)
                | u64::from(self.device) << 16
                | u64::from(self.class & 0xff_ffff) << 32,
        );
        mrs.set(
            at + 2,
            u64::from(self.flags.0) | u64::from(self.revision) << 8,
        );
    }

    /// Read an entry from `mrs[at..at + 3]`.
    ///
    /// # Errors
    /// [`PciError::BadRequest`] when a field is out of range.
    pub fn decode(mrs: &MessageRegisters, at: usize) -> Result<Self, PciError> {
        let bdf = Bdf::from_wire(mrs.get(at)).ok_or(PciError::BadRequest)?;
        let ids = mrs.get(at + 1);
        let rest = mrs.get(at + 2);
        if ids >> 56 != 0 || rest >> 16 != 0 {
            return Err(PciError::BadRequest);
        }
        // CAST: fields masked to their widths.
        Ok(Self {
            bdf,
            vendor: (ids & 0xffff) as u16,
            device: (ids >> 16 & 0xffff) as u16,
            class: (ids >> 32 & 0xff_ffff) as u32,
            revision: (rest >> 8 & 0xff) as u8,
            flags: DeviceFlags((rest & 0xff) as u8),
        })
    }
}

/// What kind of address space a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BarKind {
    /// I/O ports.
    Io = 1,
    /// Memory, 32-bit address.
    Mem32 = 2,
    /// Memory, 64-bit address (occupies two BAR slots).
    Mem64 = 3,
}

impl BarKind {
    fn from_wire(v: u64) -> Option<Self> {
        match v {
            1 => Some(Self::Io),
            2 => Some(Self::Mem32),
            3 => Some(Self::Mem64),
            _ => None,
        }
    }
}

/// Where one BAR of a claimed function was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarPlacement {
    /// BAR index (0..6).
    pub index: u8,
    /// Address space.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Whether the server placed it (an I/O BAR without an I/O window is not).
    pub assigned: bool,
    /// Physical (bus) address; meaningful when `assigned`.
    pub phys: u64,
    /// Size in bytes.
    pub size: u64,
    /// Offset of `phys` inside the window the server assigns from (the `pci_mmio` region):
    /// the client finds the BAR at its own mapping of that region plus this offset.
    pub window_offset: u64,
}

impl BarPlacement {
    /// Words in a reply.
    pub const WORDS: usize = 4;

    /// Write the placement into `mrs[0..4]`.
    pub fn encode(&self, mrs: &mut MessageRegisters) {
        mrs.set(0, self.phys);
        mrs.set(1, self.size);
        mrs.set(
            2,
            u64::from(self.index)
                | (self.kind as u64) << 8
                | u64::from(self.prefetchable) << 16
                | u64::from(self.assigned) << 17,
        );
        mrs.set(3, self.window_offset);
    }

    /// Read a placement from `mrs[0..4]`.
    ///
    /// # Errors
    /// [`PciError::BadRequest`] when a field is out of range.
    pub fn decode(mrs: &MessageRegisters) -> Result<Self, PciError> {
        let w = mrs.get(2);
        let kind = BarKind::from_wire(w >> 8 & 0xff).ok_or(PciError::BadRequest)?;
        if w & 0xff >= 6 || w >> 18 != 0 {
            return Err(PciError::BadRequest);
        }
        Ok(Self {
            // CAST: checked below 6 above.
            index: (w & 0xff) as u8,
            kind,
            prefetchable: w >> 16 & 1 != 0,
            assigned: w >> 17 & 1 != 0,
            phys: mrs.get(0),
            size: mrs.get(1),
            window_offset: mrs.get(3),
        })
    }
}

/// A request, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// The `index`-th function.
    List {
        /// 0-based position in the server's table.
        index: u16,
    },
    /// Claim `bdf`.
    Claim {
        /// The function.
        bdf: Bdf,
    },
    /// Read `width` bytes at `offset` of `bdf`.
    ReadConfig {
        /// The function.
        bdf: Bdf,
        /// Byte offset.
        offset: u16,
        /// Access width.
        width: Width,
    },
    /// Write `value` at `offset` of `bdf`.
    WriteConfig {
        /// The function.
        bdf: Bdf,
        /// Byte offset.
        offset: u16,
        /// Access width.
        width: Width,
        /// The value (fits `width`).
        value: u32,
    },
    /// Where BAR `index` of `bdf` was placed.
    Bar {
        /// The function.
        bdf: Bdf,
        /// BAR index.
        index: u8,
    },
    /// Give `bdf` back.
    Release {
        /// The function.
        bdf: Bdf,
    },
}

impl Request {
    /// Put the request into `mrs`; returns the message info to call with.
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        let (op, args): (Op, [u64; 4]) = match *self {
            Self::List { index } => (Op::List, [u64::from(index), 0, 0, 0]),
            Self::Claim { bdf } => (Op::Claim, [rid(bdf), 0, 0, 0]),
            Self::ReadConfig { bdf, offset, width } => (
                Op::ReadConfig,
                [rid(bdf), u64::from(offset), u64::from(width.bytes()), 0],
            ),
            Self::WriteConfig {
                bdf,
                offset,
                width,
                value,
            } => (
                Op::WriteConfig,
                [
                    rid(bdf),
                    u64::from(offset),
                    u64::from(width.bytes()),
                    u64::from(value),
                ],
            ),
            Self::Bar { bdf, index } => (Op::Bar, [rid(bdf), u64::from(index), 0, 0]),
            Self::Release { bdf } => (Op::Release, [rid(bdf), 0, 0, 0]),
        };
        let n = Self::words(op);
        for (i, a) in args.iter().take(n).enumerate() {
            mrs.set(i, *a);
        }
        MessageInfo::new(op as u64, n)
    }

    /// Decode a request (the server's side). Every register is checked.
    ///
    /// # Errors
    /// [`PciError::BadRequest`] for an unknown label, too few registers, a bad routing id, width
    /// or index, or a value wider than its width; [`PciError::BadOffset`] for an offset over 16 bits.
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, PciError> {
        let op = Op::try_from(msg.label())?;
        if msg.count() < Self::words(op) {
            return Err(PciError::BadRequest);
        }
        let bdf = || Bdf::from_wire(mrs.get(0)).ok_or(PciError::BadRequest);
        let offset = || u16::try_from(mrs.get(1)).map_err(|_| PciError::BadOffset);
        let width = || Width::from_bytes(mrs.get(2)).ok_or(PciError::BadRequest);
        Ok(match op {
            Op::List => Self::List {
                index: u16::try_from(mrs.get(0)).map_err(|_| PciError::NoSuchDevice)?,
            },
            Op::Claim => Self::Claim { bdf: bdf()? },
            Op::ReadConfig => Self::ReadConfig {
                bdf: bdf()?,
                offset: offset()?,
                width: width()?,
            },
            Op::WriteConfig => {
                let width = width()?;
                let value = u32::try_from(mrs.get(3))
                    .ok()
                    .filter(|v| v & !width.mask() == 0)
                    .ok_or(PciError::BadRequest)?;
                Self::WriteConfig {
                    bdf: bdf()?,
                    offset: offset()?,
                    width,
                    value,
                }
            }
            Op::Bar => Self::Bar {
                bdf: bdf()?,
                index: u8::try_from(mrs.get(1))
                    .ok()
                    .filter(|i| *i < 6)
                    .ok_or(PciError::NoSuchBar)?,
            },
            Op::Release => Self::Release { bdf: bdf()? },
        })
    }

    const fn words(op: Op) -> usize {
        match op {
            Op::List | Op::Claim | Op::Release => 1,
            Op::Bar => 2,
            Op::ReadConfig => 3,
            Op::WriteConfig => 4,
        }
    }
}

fn rid(bdf: Bdf) -> u64 {
    u64::from(bdf.routing_id())
}

/// The caller's stub: one method per operation, each one PPC over `ch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciClient {
    ch: Channel,
}

impl PciClient {
    /// Calls go over `ch` (the caller's end of its channel to `pci`).
    pub const fn new(ch: Channel) -> Self {
        Self { ch }
    }

    fn call<'k>(
        &self,
        k: &'k mut dyn Kernel,
        req: &Request,
    ) -> Result<&'k MessageRegisters, PciError> {
        let info = req.encode(k.mrs());
        let reply = k.ppcall(self.ch, info).map_err(|_| PciError::Transport)?;
        match reply.label() {
            0 => Ok(k.mrs()),
            e => Err(PciError::from_wire(e)),
        }
    }

    /// The `index`-th function and how many there are.
    ///
    /// # Errors
    /// [`PciError::NoSuchDevice`] past the end; [`PciError::Transport`].
    pub fn list(&self, k: &mut dyn Kernel, index: u16) -> Result<(DeviceEntry, u16), PciError> {
        let mrs = self.call(k, &Request::List { index })?;
        let total = u16::try_from(mrs.get(DeviceEntry::WORDS)).map_err(|_| PciError::BadRequest)?;
        Ok((DeviceEntry::decode(mrs, 0)?, total))
    }

    /// Claim `bdf`.
    ///
    /// # Errors
    /// [`PciError::NotAllowed`], [`PciError::ClaimedByOther`], [`PciError::AlreadyClaimed`],
    /// [`PciError::NoSuchDevice`], [`PciError::DeviceRefused`], [`PciError::Transport`].
    pub fn claim(&self, k: &mut dyn Kernel, bdf: Bdf) -> Result<(), PciError> {
        self.call(k, &Request::Claim { bdf }).map(|_| ())
    }

    /// Read `width` bytes at `offset` of the claimed `bdf`.
    ///
    /// # Errors
    /// [`PciError::NotClaimed`], [`PciError::BadOffset`], [`PciError::ConfigFailed`], [`PciError::Transport`].
    pub fn read_config(
        &self,
        k: &mut dyn Kernel,
        bdf: Bdf,
        offset: u16,
        width: Width,
    ) -> Result<u32, PciError> {
        let mrs = self.call(k, &Request::ReadConfig { bdf, offset, width })?;
        u32::try_from(mrs.get(0)).map_err(|_| PciError::BadRequest)
    }

    /// Write `value` at `offset` of the claimed `bdf` (command register, MSI/MSI-X control only).
    ///
    /// # Errors
    /// [`PciError::NotClaimed`], [`PciError::RegisterNotWritable`], [`PciError::BadRequest`] when
    /// `value` is wider than `width`, [`PciError::ConfigFailed`], [`PciError::Transport`].
    pub fn write_config(
        &self,
        k: &mut dyn Kernel,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), PciError> {
        if value & !width.mask() != 0 {
            return Err(PciError::BadRequest);
        }
        self.call(
            k,
            &Request::WriteConfig {
                bdf,
                offset,
                width,
                value,
            },
        )
        .map(|_| ())
    }

    /// Where BAR `index` of the claimed `bdf` was placed.
    ///
    /// # Errors
    /// [`PciError::NotClaimed`], [`PciError::NoSuchBar`], [`PciError::Transport`].
    pub fn bar(&self, k: &mut dyn Kernel, bdf: Bdf, index: u8) -> Result<BarPlacement, PciError> {
        BarPlacement::decode(self.call(k, &Request::Bar { bdf, index })?)
    }

    /// Give the claimed `bdf` back; the server turns bus mastering off first and, when the
    /// function supports it, resets it (FLR) with its BARs restored.
    ///
    /// # Errors
    /// [`PciError::NotClaimed`], [`PciError::Transport`].
    pub fn release(&self, k: &mut dyn Kernel, bdf: Bdf) -> Result<(), PciError> {
        self.call(k, &Request::Release { bdf }).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips() {
        let bdf = Bdf::new(3, 0, 1).unwrap();
        for req in [
            Request::List { index: 7 },
            Request::Claim { bdf },
            Request::ReadConfig {
                bdf,
                offset: 0x100,
                width: Width::U32,
            },
            Request::WriteConfig {
                bdf,
                offset: 4,
                width: Width::U16,
                value: 0x406,
            },
            Request::Bar { bdf, index: 5 },
            Request::Release { bdf },
        ] {
            let mut mrs = MessageRegisters::default();
            let info = req.encode(&mut mrs);
            assert_eq!(Request::decode(info, &mrs), Ok(req));
        }
    }

    #[test]
    fn hostile_requests_get_typed_errors() {
        let dec = |label: u64, regs: &[u64]| {
            let mut mrs = MessageRegisters::default();
            for (i, r) in regs.iter().enumerate() {
                mrs.set(i, *r);
            }
            Request::decode(MessageInfo::new(label, regs.len()), &mrs)
        };
        assert_eq!(dec(0, &[]), Err(PciError::BadRequest));
        assert_eq!(dec(99, &[1]), Err(PciError::BadRequest));
        assert_eq!(dec(3, &[1, 2]), Err(PciError::BadRequest));
        assert_eq!(dec(2, &[0x1_0000]), Err(PciError::BadRequest));
        assert_eq!(dec(3, &[1, 0x1_0000, 4]), Err(PciError::BadOffset));
        assert_eq!(dec(3, &[1, 0, 8]), Err(PciError::BadRequest));
        assert_eq!(dec(4, &[1, 4, 2, 0x1_0000]), Err(PciError::BadRequest));
        assert_eq!(dec(5, &[1, 6]), Err(PciError::NoSuchBar));
        assert_eq!(dec(1, &[1 << 16]), Err(PciError::NoSuchDevice));
    }

    #[test]
    fn entries_and_placements_round_trip() {
        let e = DeviceEntry {
            bdf: Bdf::new(1, 0, 0).unwrap(),
            vendor: 0x10de,
            device: 0x2204,
            class: 0x030000,
            revision: 0xa1,
            flags: DeviceFlags(DeviceFlags::ALLOWED | DeviceFlags::CLAIMED_BY_YOU),
        };
        let mut mrs = MessageRegisters::default();
        e.encode(&mut mrs, 0);
        assert_eq!(DeviceEntry::decode(&mrs, 0), Ok(e));
        mrs.set(2, 1 << 20);
        assert_eq!(DeviceEntry::decode(&mrs, 0), Err(PciError::BadRequest));

        let p = BarPlacement {
            index: 1,
            kind: BarKind::Mem64,
            prefetchable: true,
            assigned: true,
            phys: 0x1_0000_0000,
            size: 256 << 20,
            window_offset: 0x10_0000,
        };
        p.encode(&mut mrs);
        assert_eq!(BarPlacement::decode(&mrs), Ok(p));
        mrs.set(2, 9 << 8);
        assert_eq!(BarPlacement::decode(&mrs), Err(PciError::BadRequest));
        assert_eq!(PciError::from_wire(6), PciError::RegisterNotWritable);
        assert_eq!(PciError::from_wire(0xff), PciError::Transport);
    }
}
