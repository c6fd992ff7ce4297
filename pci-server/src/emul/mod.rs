//! An in-memory PCI(e) topology with hardware-like behaviour, for tests, the benchmark,
//! `cargo xtask lspci`, and the GSP model PD (which presents the emulated GPU's topology to `pci`
//! over PPC in hosted mode, serving [`pci_api::cfg`] with [`Topology::serve`]).
//!
//! What it models, because the server's correctness depends on it:
//! - **Routing.** A function placed [`Slot::Below`] a bridge answers only when every bridge on
//!   the way forwards its bus: the bus must be the bridge's secondary bus and inside each
//!   ancestor's secondary..=subordinate range. Bridges come out of reset with bus numbers 0, so
//!   nothing below them is visible until the enumerator numbers the buses itself.
//! - **PCIe ports.** Below a root or switch downstream port only device 0 exists, unless ARI
//!   forwarding is enabled in the port, when device and function bits form one function number.
//! - **Registers.** Per-byte write masks, write-one-to-clear status bits, BARs that read back
//!   their size mask after all ones are written, read-only ids, and all ones from absent
//!   functions and from beyond a 256-byte function's space.
//!
//! [`Slot::At`] pins a function to a fixed address regardless of bridges: how a dump of a real
//! machine is replayed, since the dump already shows the bus numbers firmware gave it.

mod function;
pub mod presets;

pub use function::{BarSizes, EmuBar, EmuFunction, PcieType, CFG_SIZE, LEGACY_SIZE};

use crate::config::{check_access, ConfigError, ConfigSpace};
use core::fmt;
use pci_api::cfg::ConfigRequest;
use pci_api::{Bdf, Width};
use pd_core::{Kernel, MessageInfo};

/// Why a topology or function could not be built. Discriminants start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EmuError {
    /// The topology's table is full.
    Full = 1,
    /// Another function already occupies that address.
    DuplicateSlot = 2,
    /// `Slot::Below` names something that is not an earlier bridge.
    NotABridge = 3,
    /// No room left for another capability.
    NoRoom = 4,
    /// A BAR (or ROM) index, kind, size or alignment that hardware cannot have.
    BadBar = 5,
    /// A dump length that is not a multiple of 4 in 64..=4096, or bytes outside the space.
    BadDump = 6,
}

impl fmt::Display for EmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "topology full",
            Self::DuplicateSlot => "address already occupied",
            Self::NotABridge => "parent is not an earlier bridge",
            Self::NoRoom => "no room for the capability",
            Self::BadBar => "impossible BAR",
            Self::BadDump => "bad dump length",
        })
    }
}

/// Where a function sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// At a fixed address, whatever the bridges say (root-bus devices; replayed dumps).
    At(Bdf),
    /// Device/function `devfn` on the secondary bus of the bridge at index `bridge` (an earlier
    /// entry of the same topology).
    Below {
        /// Index of the bridge, as [`Topology::add`] returned it.
        bridge: usize,
        /// Device and function (or ARI function number).
        devfn: u8,
    },
}

#[derive(Clone, Debug)]
struct Node {
    slot: Slot,
    f: EmuFunction,
}

/// Up to `N` emulated functions and how they are wired.
#[derive(Clone, Debug)]
pub struct Topology<const N: usize> {
    nodes: heapless::Vec<Node, N>,
}

impl<const N: usize> Default for Topology<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Topology<N> {
    /// An empty topology (every access reads all ones).
    pub const fn new() -> Self {
        Self {
            nodes: heapless::Vec::new(),
        }
    }

    /// Place `f` at `slot`; returns its index (for [`Slot::Below`] and [`Topology::function`]).
    ///
    /// # Errors
    /// [`EmuError::Full`], [`EmuError::DuplicateSlot`], [`EmuError::NotABridge`].
    pub fn add(&mut self, slot: Slot, f: EmuFunction) -> Result<usize, EmuError> {
        if let Slot::Below { bridge, .. } = slot {
            if !self.nodes.get(bridge).is_some_and(|n| n.f.is_bridge()) {
                return Err(EmuError::NotABridge);
            }
        }
        if self.nodes.iter().any(|n| n.slot == slot) {
            return Err(EmuError::DuplicateSlot);
        }
        let index = self.nodes.len();
        self.nodes
            .push(Node { slot, f })
            .map_err(|_| EmuError::Full)?;
        Ok(index)
    }

    /// The function at `index`.
    pub fn function(&self, index: usize) -> Option<&EmuFunction> {
        self.nodes.get(index).map(|n| &n.f)
    }

    /// The function at `index`, mutably (to inject faults).
    pub fn function_mut(&mut self, index: usize) -> Option<&mut EmuFunction> {
        self.nodes.get_mut(index).map(|n| &mut n.f)
    }

    /// How many functions there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Which function a configuration request for `bdf` reaches, if any.
    pub fn route(&self, bdf: Bdf) -> Option<usize> {
        self.nodes.iter().position(|n| match n.slot {
            Slot::At(at) => at == bdf,
            Slot::Below { bridge, devfn } => {
                self.forwards(bridge, bdf.bus()) && self.port_accepts(bridge, devfn, bdf)
            }
        })
    }

    /// Whether a type 1 request for `bus` reaches the secondary side of `bridge` as a type 0.
    fn forwards(&self, bridge: usize, bus: u8) -> bool {
        if self.nodes.get(bridge).map(|n| n.f.bus_range().0) != Some(bus) {
            return false;
        }
        let mut cur = bridge;
        // Parents come before children (checked by `add`), so this climbs at most N steps.
        for _ in 0..N {
            let Some(n) = self.nodes.get(cur) else {
                return false;
            };
            let (sec, sub) = n.f.bus_range();
            // A bridge with secondary bus 0 is unconfigured: bus 0 is the root bus.
            if sec == 0 || bus < sec || bus > sub {
                return false;
            }
            match n.slot {
                Slot::At(_) => return true,
                Slot::Below { bridge: up, .. } => cur = up,
            }
        }
        false
    }

    /// Whether the port `bridge` passes a type 0 request for `bdf` to the function at `devfn`.
    fn port_accepts(&self, bridge: usize, devfn: u8, bdf: Bdf) -> bool {
        match self.nodes.get(bridge) {
            Some(n) if n.f.is_downstream_port() && !n.f.ari_forwarding() => {
                bdf.dev() == 0 && devfn == bdf.devfn()
            }
            Some(_) => devfn == bdf.devfn(),
            None => false,
        }
    }

    /// Serve one [`pci_api::cfg`] request (the device model's `protected` for its `pci` channel).
    pub fn serve(&mut self, k: &mut dyn Kernel, msg: MessageInfo) -> MessageInfo {
        let result = ConfigRequest::decode(msg, k.mrs()).and_then(|req| match req.op {
            pci_api::cfg::ConfigOp::Read => self.read(req.bdf, req.offset, req.width),
            pci_api::cfg::ConfigOp::Write => self
                .write(req.bdf, req.offset, req.width, req.value)
                .map(|()| 0),
        });
        ConfigRequest::reply(result, k.mrs())
    }
}

impl<const N: usize> ConfigSpace for Topology<N> {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        check_access(offset, width, 0)?;
        Ok(match self.route(bdf).and_then(|i| self.nodes.get(i)) {
            Some(n) => n.f.read(offset, width),
            None => width.mask(),
        })
    }

    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        check_access(offset, width, value)?;
        if let Some(n) = self.route(bdf).and_then(|i| self.nodes.get_mut(i)) {
            n.f.write(offset, width, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs;

    fn at(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).unwrap()
    }

    #[test]
    fn initiate_flr_resets_a_capable_function_and_nothing_else() {
        let build = |flr: bool| {
            let mut f = EmuFunction::endpoint(0x10de, 0x2204, 0x03_00_00);
            f.bar(
                1,
                EmuBar::Mem64 {
                    size: 1 << 20,
                    prefetchable: true,
                },
            )
            .unwrap()
            .pcie(PcieType::Endpoint, false)
            .unwrap();
            if flr {
                f.flr().unwrap();
            }
            f.write(0x14, Width::U32, 0xe000_0000);
            f.write(0x18, Width::U32, 0x1);
            f.write(regs::COMMAND, Width::U16, 0x6);
            f
        };
        // The PCIe capability is the function's first, at 0x40.
        let at = 0x40 + regs::EXP_DEVCTL;
        let mut f = build(true);
        f.write(at, Width::U16, 0x2010);
        assert_eq!(f.read(at, Width::U16), 0x2010);
        // A 32-bit write covering DevCtl with bit 15 set: BARs, command and DevCtl reset,
        // the BAR's type bits and the ids stay.
        f.write(at, Width::U32, u32::from(regs::EXP_DEVCTL_BCR_FLR));
        assert_eq!(
            (
                f.read(0x14, Width::U32),
                f.read(0x18, Width::U32),
                f.read(regs::COMMAND, Width::U16),
                f.read(at, Width::U16),
                f.read(0, Width::U32)
            ),
            (0xc, 0, 0, 0, 0x2204_10de)
        );
        // Without the capability the bit is reserved: nothing happens.
        let mut f = build(false);
        f.write(at, Width::U16, u32::from(regs::EXP_DEVCTL_BCR_FLR));
        assert_eq!(f.read(0x14, Width::U32), 0xe000_000c);
        assert_eq!(f.flr().map(|_| ()), Ok(()));
        assert_eq!(
            EmuFunction::endpoint(1, 2, 3).flr().map(|_| ()),
            Err(EmuError::NoRoom)
        );
    }

    #[test]
    fn registers_follow_hardware_write_rules() {
        let mut f = EmuFunction::endpoint(0x10de, 0x2204, 0x03_00_00);
        f.bar(
            1,
            EmuBar::Mem64 {
                size: 256 << 20,
                prefetchable: true,
            },
        )
        .unwrap()
        .rom(512 << 10)
        .unwrap();
        // Ids and class are read-only.
        f.write(0, Width::U32, 0);
        f.write(8, Width::U32, 0);
        assert_eq!(
            (f.read(0, Width::U32), f.read(8, Width::U32) >> 8),
            (0x2204_10de, 0x03_00_00)
        );
        // Sizing: all ones read back the size mask; the type bits stay.
        f.write(0x14, Width::U32, u32::MAX);
        f.write(0x18, Width::U32, u32::MAX);
        assert_eq!(
            (f.read(0x14, Width::U32), f.read(0x18, Width::U32)),
            (0xf000_000c, u32::MAX)
        );
        f.write(0x30, Width::U32, u32::MAX);
        assert_eq!(f.read(0x30, Width::U32), 0xfff8_0001);
        // Status bits are write-one-to-clear.
        f.poke(0x07, &[0x20 | 0x80]).unwrap();
        f.write(0x06, Width::U16, 0x8000);
        assert_eq!(f.read(0x06, Width::U16) >> 8, 0x20);
        // Unimplemented BARs stay zero.
        f.write(0x10, Width::U32, u32::MAX);
        assert_eq!(f.read(0x10, Width::U32), 0);
        assert_eq!(
            f.bar(
                5,
                EmuBar::Mem64 {
                    size: 16,
                    prefetchable: false
                }
            )
            .unwrap_err(),
            EmuError::BadBar
        );
        assert_eq!(
            f.bar(
                0,
                EmuBar::Mem32 {
                    size: 24,
                    prefetchable: false
                }
            )
            .unwrap_err(),
            EmuError::BadBar
        );
    }

    #[test]
    fn routing_needs_bus_numbers_and_respects_ports() {
        let mut t: Topology<4> = Topology::new();
        let mut rp = EmuFunction::bridge(0x1b36, 0x000c);
        rp.pcie(PcieType::RootPort, true).unwrap();
        let rp = t.add(Slot::At(at(0, 1, 0)), rp).unwrap();
        let dev = t
            .add(
                Slot::Below {
                    bridge: rp,
                    devfn: 0,
                },
                EmuFunction::endpoint(1, 2, 0),
            )
            .unwrap();
        let ari = t
            .add(
                Slot::Below {
                    bridge: rp,
                    devfn: 9,
                },
                EmuFunction::endpoint(1, 3, 0),
            )
            .unwrap();
        assert_eq!(
            t.add(
                Slot::Below {
                    bridge: dev,
                    devfn: 1
                },
                EmuFunction::endpoint(1, 4, 0)
            ),
            Err(EmuError::NotABridge)
        );
        assert_eq!(
            t.add(Slot::At(at(0, 1, 0)), EmuFunction::endpoint(1, 4, 0)),
            Err(EmuError::DuplicateSlot)
        );
        assert_eq!(t.route(at(1, 0, 0)), None);
        t.write(at(0, 1, 0), regs::PRIMARY_BUS, Width::U32, 0x00_02_01_00)
            .unwrap();
        assert_eq!(t.route(at(1, 0, 0)), Some(dev));
        // Only device 0 below a port without ARI forwarding enabled.
        assert_eq!(t.route(at(1, 1, 1)), None);
        let devctl2 = 0x40 + regs::EXP_DEVCTL2;
        t.write(
            at(0, 1, 0),
            devctl2,
            Width::U16,
            u32::from(regs::EXP_DEVCTL2_ARI),
        )
        .unwrap();
        assert_eq!(t.route(at(1, 1, 1)), Some(ari));
        // Bus 2 is in range but nothing is on it; bus 3 is out of range.
        assert_eq!((t.route(at(2, 0, 0)), t.route(at(3, 0, 0))), (None, None));
    }

    #[test]
    fn serves_the_config_protocol() {
        extern crate std;
        let mut t: Topology<1> = Topology::new();
        t.add(
            Slot::At(at(0, 0, 0)),
            EmuFunction::host_bridge(0x8086, 0x29c0),
        )
        .unwrap();
        struct K(pd_core::MessageRegisters);
        impl Kernel for K {
            fn pd_name(&self) -> &str {
                "gsp_model"
            }
            fn notify(&mut self, _: pd_core::Channel) -> Result<(), pd_core::IpcError> {
                Ok(())
            }
            fn ppcall(
                &mut self,
                _: pd_core::Channel,
                _: MessageInfo,
            ) -> Result<MessageInfo, pd_core::IpcError> {
                Err(pd_core::IpcError::Unsupported)
            }
            fn mrs(&mut self) -> &mut pd_core::MessageRegisters {
                &mut self.0
            }
            fn now_ns(&self) -> u64 {
                0
            }
        }
        let mut k = K(Default::default());
        let req = ConfigRequest {
            op: pci_api::cfg::ConfigOp::Read,
            bdf: at(0, 0, 0),
            offset: 0,
            width: Width::U32,
            value: 0,
        };
        let info = req.encode(&mut k.0);
        let reply = t.serve(&mut k, info);
        assert_eq!((reply.label(), k.0.get(0)), (0, 0x29c0_8086));
        let reply = t.serve(&mut k, MessageInfo::new(7, 3));
        assert_eq!(reply.label(), pci_api::cfg::ConfigError::BadRequest as u64);
    }
}
