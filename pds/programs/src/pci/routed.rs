//! Configuration space on seL4: the machine's ECAM for its own devices, and the GSP model's
//! simulated GPU (QEMU has no NVIDIA GPU) spliced into the same hierarchy, so one enumeration
//! numbers, places and grants both.
//!
//! Routing, per access:
//! - root bus, devices [`MODEL_FIRST_DEVICE`]`..+`[`MODEL_ROOT_DEVICES`]: the model's root bus
//!   devices 0.. (its host bridge and root port), by PPC;
//! - any bus a model bridge forwards (its secondary..=subordinate range): the model, by PPC, with
//!   the bus number unchanged (the enumerator programmed the model's bridges with system-wide
//!   numbers, so the model routes them itself);
//! - everything else: ECAM.
//!
//! The router learns the model bridges' ranges by watching the writes that set them (offsets
//! 0x18..=0x1a of a type 1 function): after such a write it reads the bus-number register back
//! from the model. Enumeration is depth first, so a temporary subordinate of 0xff while the
//! model's subtree is scanned never overlaps a bus ECAM's bridges are given.
//!
//! Rejected: routing a whole bus range to the model as a second root (a second host bridge at,
//! say, bus 0x80) needs a second enumeration root, which pci-server does not have, and would
//! give the GPU bus numbers that overlap nothing yet belong to no bridge.

use pci_api::{Bdf, Width};
use pci_server::{ConfigError, ConfigPort, ConfigSpace, Ecam, PpcConfig};
use pd_core::{Channel, Kernel};

/// The root-bus device where the model's device 0 appears. Both QEMU machines leave it free:
/// their own devices take the low slots (q35 also 0x1f).
pub const MODEL_FIRST_DEVICE: u8 = 0x10;
/// Devices on the model's root bus (host bridge 00:00.0 and root port 00:01.0).
pub const MODEL_ROOT_DEVICES: u8 = 2;
/// The most model bridges whose bus ranges are tracked.
const BRIDGES: usize = 4;

/// Bus number register (primary, secondary, subordinate, latency) of a type 1 header.
const BUS_NUMBERS: u16 = 0x18;
/// Header type register (bit 7: multi-function).
const HEADER_TYPE: u16 = 0x0e;

/// What the router knows about the model's side: its bridges' bus ranges.
#[derive(Debug, Default)]
pub struct BusMap {
    /// (model bridge, secondary, subordinate); secondary 0 means not forwarding.
    bridges: heapless::Vec<(Bdf, u8, u8), BRIDGES>,
}

/// Where an access goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Ecam(Bdf),
    Model(Bdf),
}

impl BusMap {
    fn route(&self, bdf: Bdf) -> Target {
        if bdf.bus() == 0 {
            let d = bdf.dev().wrapping_sub(MODEL_FIRST_DEVICE);
            return match Bdf::new(0, d, bdf.func()) {
                Some(m) if d < MODEL_ROOT_DEVICES => Target::Model(m),
                _ => Target::Ecam(bdf),
            };
        }
        let forwarded = self
            .bridges
            .iter()
            .any(|&(_, sec, sub)| sec != 0 && (sec..=sub).contains(&bdf.bus()));
        if forwarded {
            Target::Model(bdf)
        } else {
            Target::Ecam(bdf)
        }
    }

    /// Record the bus numbers of model function `bdf` after a write that touched them.
    fn learn(&mut self, model: &mut dyn ConfigSpace, bdf: Bdf) -> Result<(), ConfigError> {
        if model.read8(bdf, HEADER_TYPE)? & 0x7f != 1 {
            return Ok(());
        }
        let [_, sec, sub, _] = model.read32(bdf, BUS_NUMBERS)?.to_le_bytes();
        match self.bridges.iter_mut().find(|(b, _, _)| *b == bdf) {
            Some(entry) => *entry = (bdf, sec, sub),
            None => {
                if self.bridges.push((bdf, sec, sub)).is_err() {
                    log::error!("pci: more than {BRIDGES} model bridges; {bdf} is not routed");
                }
            }
        }
        Ok(())
    }
}

/// The two backends and the map, for the length of one access sequence.
pub struct Router<'a> {
    /// The machine's configuration space.
    pub ecam: &'a mut dyn ConfigSpace,
    /// The model's.
    pub model: &'a mut dyn ConfigSpace,
    /// What is known of the model's bridges.
    pub map: &'a mut BusMap,
}

impl core::fmt::Debug for Router<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Router")
            .field("map", &self.map)
            .finish_non_exhaustive()
    }
}

impl ConfigSpace for Router<'_> {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        match self.map.route(bdf) {
            Target::Ecam(b) => self.ecam.read(b, offset, width),
            Target::Model(b) => self.model.read(b, offset, width),
        }
    }

    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        match self.map.route(bdf) {
            Target::Ecam(b) => self.ecam.write(b, offset, width, value),
            Target::Model(b) => {
                self.model.write(b, offset, width, value)?;
                let end = offset.saturating_add(width.bytes());
                if offset < BUS_NUMBERS + 3 && end > BUS_NUMBERS {
                    self.map.learn(&mut *self.model, b)?;
                }
                Ok(())
            }
        }
    }
}

/// The seL4 port: ECAM plus PPCs to the model on `model`.
#[derive(Debug)]
pub struct Routed {
    ecam: Ecam,
    model: Channel,
    map: BusMap,
}

impl Routed {
    /// Route between `ecam` and the model on channel `model`.
    pub fn new(ecam: Ecam, model: Channel) -> Self {
        Self {
            ecam,
            model,
            map: BusMap::default(),
        }
    }
}

impl ConfigPort for Routed {
    fn with<R>(&mut self, k: &mut dyn Kernel, f: impl FnOnce(&mut dyn ConfigSpace) -> R) -> R {
        let mut model = PpcConfig::new(k, self.model);
        f(&mut Router {
            ecam: &mut self.ecam,
            model: &mut model,
            map: &mut self.map,
        })
    }
}
