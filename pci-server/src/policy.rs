//! Which client may claim which device: a table the PD glue builds from the system's
//! configuration and hands to the server, never a rule compiled into it (Genode's platform
//! driver policy; Hubris' `allowed-callers`).

use crate::probe::Function;
use pd_core::Channel;

/// Which functions a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceMatch {
    /// By vendor and, optionally, device id.
    Id {
        /// PCI vendor id.
        vendor: u16,
        /// PCI device id; `None` = any device of the vendor.
        device: Option<u16>,
    },
    /// By class and, optionally, subclass (e.g. 0x03 display, 0x04/0x03 audio).
    Class {
        /// Base class.
        class: u8,
        /// Subclass; `None` = any.
        subclass: Option<u8>,
    },
}

impl DeviceMatch {
    /// Whether `f` matches.
    pub fn matches(&self, f: &Function) -> bool {
        match *self {
            Self::Id { vendor, device } => {
                f.vendor == vendor && device.is_none_or(|d| d == f.device)
            }
            Self::Class { class, subclass } => {
                let (base, sub) = (f.class >> 16 & 0xff, f.class >> 8 & 0xff);
                base == u32::from(class) && subclass.is_none_or(|s| u32::from(s) == sub)
            }
        }
    }
}

/// One rule: `client` (the server's end of that client's channel) may claim what `device` matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// The client, by the server-side channel it calls on.
    pub client: Channel,
    /// What it may claim.
    pub device: DeviceMatch,
}

/// A client the server knows: the channel it calls on and its PD name (for log lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientEntry<'a> {
    /// The server's end of the client's channel.
    pub channel: Channel,
    /// The client's PD name in `system.xml`.
    pub name: &'a str,
}

/// Whether `policy` lets `client` claim `f`. Bridges are never claimable: they carry other
/// devices' traffic.
pub fn allowed(policy: &[PolicyRule], client: Channel, f: &Function) -> bool {
    !f.is_bridge()
        && policy
            .iter()
            .any(|r| r.client == client && r.device.matches(f))
}
