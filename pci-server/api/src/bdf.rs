//! Bus/device/function addresses and access widths, shared by both protocols.

use core::fmt;

/// A function's routing id: bus, device (0..32) and function (0..8).
///
/// With ARI (PCIe "Alternative Routing-ID Interpretation") the device and function fields merge
/// into one 8-bit function number; [`Bdf::from_ari`] builds such an address. The encoding is the
/// PCIe routing id either way: `bus << 8 | devfn`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bdf {
    bus: u8,
    devfn: u8,
}

impl Bdf {
    /// The address `bus:dev.func`, or `None` when `dev >= 32` or `func >= 8`.
    pub const fn new(bus: u8, dev: u8, func: u8) -> Option<Self> {
        if dev < 32 && func < 8 {
            Some(Self {
                bus,
                devfn: dev << 3 | func,
            })
        } else {
            None
        }
    }

    /// The ARI function `function` on `bus` (device and function fields combined).
    pub const fn from_ari(bus: u8, function: u8) -> Self {
        Self {
            bus,
            devfn: function,
        }
    }

    /// Decode a PCIe routing id (`bus << 8 | devfn`).
    pub const fn from_routing_id(id: u16) -> Self {
        // CAST: the high and low byte of a u16.
        Self {
            bus: (id >> 8) as u8,
            devfn: id as u8,
        }
    }

    /// A routing id that came from a message register.
    ///
    /// # Errors
    /// `None` when the value does not fit 16 bits.
    pub fn from_wire(v: u64) -> Option<Self> {
        u16::try_from(v).ok().map(Self::from_routing_id)
    }

    /// The PCIe routing id, `bus << 8 | devfn`.
    pub const fn routing_id(self) -> u16 {
        (self.bus as u16) << 8 | self.devfn as u16
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// The device number (0..32).
    pub const fn dev(self) -> u8 {
        self.devfn >> 3
    }

    /// The function number (0..8).
    pub const fn func(self) -> u8 {
        self.devfn & 7
    }

    /// Device and function as one byte (the ARI function number).
    pub const fn devfn(self) -> u8 {
        self.devfn
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.dev(), self.func())
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The width of one configuration access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Width {
    /// One byte.
    U8 = 1,
    /// Two bytes, 2-aligned.
    U16 = 2,
    /// Four bytes, 4-aligned.
    U32 = 4,
}

impl Width {
    /// The number of bytes.
    pub const fn bytes(self) -> u16 {
        self as u16
    }

    /// The width with `n` bytes, if there is one.
    pub fn from_bytes(n: u64) -> Option<Self> {
        match n {
            1 => Some(Self::U8),
            2 => Some(Self::U16),
            4 => Some(Self::U32),
            _ => None,
        }
    }

    /// The value mask of this width.
    pub const fn mask(self) -> u32 {
        match self {
            Self::U8 => 0xff,
            Self::U16 => 0xffff,
            Self::U32 => 0xffff_ffff,
        }
    }
}

/// Whether an access of `width` at `offset` stays inside a 4 KiB configuration space and is
/// naturally aligned (both ECAM and the PCIe spec require it).
pub const fn access_ok(offset: u16, width: Width) -> bool {
    let w = width.bytes();
    offset % w == 0 && (offset as u32) + (w as u32) <= 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_round_trips_and_rejects_out_of_range() {
        let b = Bdf::new(0x0a, 0x1f, 7).unwrap();
        assert_eq!(b.routing_id(), 0x0aff);
        assert_eq!(Bdf::from_routing_id(0x0aff), b);
        assert_eq!((b.bus(), b.dev(), b.func()), (0x0a, 0x1f, 7));
        assert!(Bdf::new(0, 32, 0).is_none() && Bdf::new(0, 0, 8).is_none());
        assert_eq!(Bdf::from_wire(0x1_0000), None);
        assert_eq!(Bdf::from_ari(3, 17), Bdf::new(3, 2, 1).unwrap());
        extern crate std;
        assert_eq!(std::format!("{b}"), "0a:1f.7");
    }

    #[test]
    fn access_checks_alignment_and_bounds() {
        assert!(access_ok(0xffc, Width::U32));
        assert!(!access_ok(0xffe, Width::U32));
        assert!(!access_ok(0x1000, Width::U8));
        assert!(!access_ok(0x3, Width::U16));
        assert_eq!(Width::from_bytes(3), None);
        assert_eq!(Width::from_bytes(2).map(Width::mask), Some(0xffff));
    }
}
