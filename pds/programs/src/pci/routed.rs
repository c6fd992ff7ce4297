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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use pci_server::emul::presets::{nvidia_gpu, GpuSpec, QEMU};
    use pci_server::emul::{EmuBar, EmuFunction, PcieType, Slot, Topology};
    use pci_server::fuzz::NullKernel;
    use pci_server::{Config, PciServer, State, Window, Windows};

    /// A machine's own ECAM devices and the GPU model, routed.
    struct Machine {
        ecam: Topology<8>,
        model: Topology<{ pci_server::emul::presets::GPU_TOPOLOGY_FUNCTIONS }>,
        map: BusMap,
    }

    impl ConfigSpace for Machine {
        fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
            Router {
                ecam: &mut self.ecam,
                model: &mut self.model,
                map: &mut self.map,
            }
            .read(bdf, offset, width)
        }
        fn write(&mut self, bdf: Bdf, o: u16, w: Width, v: u32) -> Result<(), ConfigError> {
            Router {
                ecam: &mut self.ecam,
                model: &mut self.model,
                map: &mut self.map,
            }
            .write(bdf, o, w, v)
        }
    }

    fn at(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).unwrap()
    }

    /// QEMU-like: host bridge, a virtio NIC at 00:01.0, a root port at 00:02.0 with a disk.
    fn qemu() -> Topology<8> {
        let mut t = Topology::new();
        t.add(
            Slot::At(at(0, 0, 0)),
            EmuFunction::host_bridge(QEMU, 0x0008),
        )
        .unwrap();
        let mut nic = EmuFunction::endpoint(0x1af4, 0x1041, 0x02_00_00);
        nic.bar(
            4,
            EmuBar::Mem64 {
                size: 16 << 10,
                prefetchable: true,
            },
        )
        .unwrap();
        t.add(Slot::At(at(0, 1, 0)), nic).unwrap();
        let mut port = EmuFunction::bridge(QEMU, 0x000c);
        port.pcie(PcieType::RootPort, false).unwrap();
        let port = t.add(Slot::At(at(0, 2, 0)), port).unwrap();
        let mut disk = EmuFunction::endpoint(0x1af4, 0x1042, 0x01_00_00);
        disk.bar(
            1,
            EmuBar::Mem32 {
                size: 4 << 10,
                prefetchable: false,
            },
        )
        .unwrap();
        t.add(
            Slot::Below {
                bridge: port,
                devfn: 0,
            },
            disk,
        )
        .unwrap();
        t
    }

    fn gpu() -> GpuSpec {
        GpuSpec {
            device: 0x2204,
            subsystem: (0x10de, 1),
            bar0: 16 << 20,
            bar1: 64 << 20,
            bar3: 32 << 20,
            audio: Some(0x1aef),
        }
    }

    #[test]
    fn one_enumeration_numbers_and_places_the_machines_devices_and_the_models_gpu() {
        let machine = Machine {
            ecam: qemu(),
            model: nvidia_gpu(&gpu()).unwrap(),
            map: BusMap::default(),
        };
        let window = Window {
            base: 0x1000_0000,
            size: 0x1000_0000,
        };
        let config = Config {
            clients: &[],
            policy: &[],
            windows: Windows {
                mem: Some(window),
                pref: None,
                io: None,
            },
            root_bus: 0,
        };
        let mut server = std::boxed::Box::new(PciServer::new(machine, config));
        server.init(&mut NullKernel::default()).unwrap();
        let found: std::vec::Vec<(Bdf, u16)> = server
            .functions()
            .iter()
            .map(|f| (f.bdf, f.device))
            .collect();
        // Root bus first; the machine's root port got bus 1 for its disk, the model's root port
        // (at 00:11.0) bus 2 for the GPU and its audio function.
        assert_eq!(
            found,
            [
                (at(0, 0, 0), 0x0008),
                (at(0, 1, 0), 0x1041),
                (at(0, 2, 0), 0x000c),
                (at(0, MODEL_FIRST_DEVICE, 0), 0x0008),
                (at(0, MODEL_FIRST_DEVICE + 1, 0), 0x000c),
                (at(1, 0, 0), 0x1042),
                (at(2, 0, 0), 0x2204),
                (at(2, 0, 1), 0x1aef),
            ]
        );
        let gpu = server.functions().get(6).unwrap();
        assert_eq!(gpu.state, State::Ok);
        for bar in gpu.bars().filter(|b| b.kind != pci_api::BarKind::Io) {
            assert!(bar.assigned && window.contains(bar.addr), "{bar:?}");
        }
        // The model saw its own bridge programmed with the system's bus numbers, and the ECAM
        // side never saw bus 2.
        let mut machine = server.into_port();
        let [_, sec, sub, _] = machine
            .model
            .read32(at(0, 1, 0), BUS_NUMBERS)
            .unwrap()
            .to_le_bytes();
        assert_eq!((sec, sub), (2, 2));
        assert_eq!(machine.ecam.read32(at(2, 0, 0), 0), Ok(u32::MAX));
        assert_eq!(
            machine.ecam.read32(at(0, MODEL_FIRST_DEVICE, 0), 0),
            Ok(u32::MAX)
        );
    }

    #[test]
    fn routes_follow_the_model_bridges_and_ignore_endpoints_bar2() {
        let mut ecam = qemu();
        let mut model = nvidia_gpu(&gpu()).unwrap();
        let mut map = BusMap::default();
        let mut r = Router {
            ecam: &mut ecam,
            model: &mut model,
            map: &mut map,
        };
        let port = at(0, MODEL_FIRST_DEVICE + 1, 0);
        assert_eq!(r.read16(port, 0), Ok(0x1b36));
        assert_eq!(r.read16(at(0, 1, 0), 2), Ok(0x1041));
        // Bus 5 goes to ECAM until the model's port forwards it; a byte write to the
        // subordinate register alone is noticed too.
        assert_eq!(r.read32(at(5, 0, 0), 0), Ok(u32::MAX));
        r.write8(port, 0x19, 5).unwrap();
        r.write8(port, 0x1a, 6).unwrap();
        assert_eq!(r.read32(at(5, 0, 0), 0), Ok(0x2204_10de));
        assert_eq!(r.map.route(at(6, 0, 0)), Target::Model(at(6, 0, 0)));
        assert_eq!(r.map.route(at(7, 0, 0)), Target::Ecam(at(7, 0, 0)));
        // Closing the port's range routes its buses back to ECAM.
        r.write32(port, 0x18, 0).unwrap();
        assert_eq!(r.map.route(at(5, 0, 0)), Target::Ecam(at(5, 0, 0)));
        // The GPU's BAR2 (offset 0x18 of a type 0 header) is not a bus range.
        r.write8(port, 0x19, 5).unwrap();
        r.write8(port, 0x1a, 5).unwrap();
        r.write32(at(5, 0, 0), 0x18, 0x0909_0900).unwrap();
        assert_eq!(r.map.route(at(9, 0, 0)), Target::Ecam(at(9, 0, 0)));
        assert_eq!(r.map.bridges.len(), 1);
        // Root-bus devices past the model's two go to ECAM.
        assert_eq!(
            r.map.route(at(0, MODEL_FIRST_DEVICE + 2, 0)),
            Target::Ecam(at(0, MODEL_FIRST_DEVICE + 2, 0))
        );
    }
}
