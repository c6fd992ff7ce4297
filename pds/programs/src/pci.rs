//! The pci PD: pci-server, the only PD that touches configuration space. At `init` it enumerates,
//! places every BAR inside the `pci_mmio` window and logs the `lspci`-style table (`pci: ...`);
//! then it serves device grants to gsp and gpu ([`pci_api::service`], client stub
//! `pci_api::PciClient`). It calls only the device model (hosted) and never anyone else.
//!
//! - **Configuration space**: hosted mode has no ECAM, so every access is a PPC to the GSP model
//!   ([`pci_server::ModelPort`]). On seL4 the platform knows `pci_ecam`'s physical address and
//!   the PD reads ECAM, with the model's simulated GPU routed in beside the machine's own devices
//!   ([`routed`]). The choice is made at run time from [`pd_core::Kernel::region_paddr`], so one
//!   program serves both platforms.
//! - **Windows**: BARs are placed in `pci_mmio` ([`window`]).
//! - **Policy** ([`POLICY`]): gsp may claim display-class functions (the GPU: it boots it, maps
//!   BAR0 and masters DMA); gpu may list devices (ids, class, who holds them) but claims nothing,
//!   since one function has one driver. Nobody else has a channel to pci.
//! - **Restarts**: on the supervisor's notification the PD reads the status page and releases the
//!   claims of every client instance that ended ([`crate::deaths`]); pci-server turns bus
//!   mastering off on each released function first.
//!
//! The server (about 64 KiB of tables) lives in the handler, which every platform keeps for the
//! PD's life on a stack sized for it: hosted PDs run on the process's main thread (8 MiB), the
//! seL4 glue declares a 512 KiB stack (`pd_sel4::STACK_SIZE`, not Microkit's `stack_size`), and
//! the monolithic composition nests every handler on its main thread. A `static` would need
//! `unsafe` to re-lend it after a warm restart; the size is checked below instead.

pub mod routed;

use crate::deaths::Deaths;
use crate::phys::{self, Source};
use crate::regions::{ro, rw};
use crate::sys::{self, pci::channels, pci::paddrs, pci::regions, supervisor::children};
use pci_server::{
    ClientEntry, Config, ConfigPort, ConfigSpace, DeviceMatch, Ecam, ModelPort, PciServer,
    PolicyRule, Window, Windows,
};
use pd_core::shm::{ReadOnly, Region};
use pd_core::{Channel, ChannelSet, Child, Handler, Kernel, MessageInfo};
use routed::Routed;

/// The clients: pci's end of each client's channel.
const CLIENTS: &[ClientEntry<'static>] = &[
    ClientEntry {
        channel: channels::GSP,
        name: sys::gsp::NAME,
    },
    ClientEntry {
        channel: channels::GPU,
        name: sys::gpu::NAME,
    },
];

/// Who may claim what: gsp the display controllers (class 0x03: VGA 0x0300 and 3D 0x0302, as
/// NVIDIA GPUs present themselves; not the GPU's HD-audio function, class 0x04). A rule cannot
/// also require vendor 0x10de, so a non-NVIDIA display controller would be claimable by gsp too;
/// gsp claims only NVIDIA functions it finds by listing.
pub const POLICY: &[PolicyRule] = &[PolicyRule {
    client: channels::GSP,
    device: DeviceMatch::Class {
        class: 0x03,
        subclass: None,
    },
}];

/// Which supervisor child is behind each client channel, for releases.
const CLIENT_CHILDREN: [(Child, Channel); 2] = [
    (children::GSP, channels::GSP),
    (children::GPU, channels::GPU),
];

const FOUR_GIB: u64 = 1 << 32;

/// The BAR window: `pci_mmio` at its PCI bus address.
///
/// On both boards the root complex decodes `pci_mmio` at its physical address (bus = physical).
/// Hosted mode has no root complex and nothing maps `pci_mmio` (BAR0 is reached by PPC to the
/// model), but its fake base lies above 4 GiB, where the GPU's 32-bit BAR0 cannot go; so the
/// hosted window sits at the fake base's offset within its 4 GiB block, as a host bridge with a
/// fixed CPU-to-bus offset would put it. Alignment is kept; the window must end below 4 GiB.
pub fn window(base: u64, size: u64, source: Source) -> Option<Window> {
    let bus = match source {
        Source::Platform => base,
        Source::HostedFake => base % FOUR_GIB,
    };
    let w = Window { base: bus, size };
    (source == Source::Platform || w.base.checked_add(size).is_some_and(|e| e <= FOUR_GIB))
        .then_some(w)
}

/// The windows BARs go to: `pci_mmio` ([`window`]), logged with where its address came from.
pub fn windows(k: &dyn Kernel) -> Windows {
    let mmio = paddrs::MMIO_PADDR;
    let (base, source) = phys::paddr(k, mmio);
    let mem = window(base, mmio.size, source);
    match mem {
        Some(w) => log::info!("pci: BAR window {w} ({}, {source} {base:#x})", mmio.region),
        None => log::error!(
            "pci: {} at {base:#x} ({source}) cannot hold 32-bit BARs: no BAR window",
            mmio.region
        ),
    }
    Windows {
        mem,
        pref: None,
        io: None,
    }
}

/// How the PD reaches configuration space.
#[derive(Debug)]
pub enum Port {
    /// PPCs to the device model (hosted).
    Model(ModelPort),
    /// ECAM, with the model's functions routed in (seL4).
    Ecam(Routed),
}

impl ConfigPort for Port {
    fn with<R>(&mut self, k: &mut dyn Kernel, f: impl FnOnce(&mut dyn ConfigSpace) -> R) -> R {
        match self {
            Self::Model(p) => p.with(k, f),
            Self::Ecam(p) => p.with(k, f),
        }
    }
}

/// The pci PD's handler.
#[derive(Debug)]
pub struct PciPd<P: ConfigPort> {
    server: PciServer<'static, P>,
    status: Region<ReadOnly>,
    deaths: Deaths<2>,
}

// The handler stays well inside the smallest stack that holds it (module doc).
const _: () = assert!(core::mem::size_of::<PciPd<Port>>() <= 128 * 1024);

/// Build the pci PD: pick the configuration-space backend, enumerate, assign, log the table.
pub fn init(k: &mut dyn Kernel) -> PciPd<Port> {
    let port = match k.region_paddr(regions::PCI_ECAM.name) {
        Some(ecam) => {
            log::info!(
                "pci: configuration space: ECAM at {ecam:#x}, the GSP model's functions at 00:{:02x}.0..",
                routed::MODEL_FIRST_DEVICE
            );
            Port::Ecam(Routed::new(
                Ecam::new(rw(regions::PCI_ECAM), 0),
                channels::GSP_MODEL,
            ))
        }
        None => {
            log::info!("pci: configuration space: PPCs to the GSP model (hosted, no ECAM)");
            Port::Model(ModelPort::new(channels::GSP_MODEL))
        }
    };
    let windows = windows(k);
    PciPd::new(k, port, windows, ro(regions::STATUS))
}

impl<P: ConfigPort> PciPd<P> {
    /// A PD over `port` placing BARs in `windows`, watching its clients on `status`.
    pub fn new(k: &mut dyn Kernel, port: P, windows: Windows, status: Region<ReadOnly>) -> Self {
        let config = Config {
            clients: CLIENTS,
            policy: POLICY,
            windows,
            root_bus: 0,
        };
        let mut server = PciServer::new(port, config);
        // A failed scan is logged by the server; what was found is still served.
        let _ = server.init(k);
        log::info!("pci: serving gsp (may claim display controllers) and gpu (may list)");
        let deaths = Deaths::new(&status, CLIENT_CHILDREN.map(|(c, _)| c));
        Self {
            server,
            status,
            deaths,
        }
    }

    /// The server (tests inspect its functions and holders).
    pub fn server(&self) -> &PciServer<'static, P> {
        &self.server
    }
}

impl<P: ConfigPort> Handler for PciPd<P> {
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        self.server.protected(k, ch, msg)
    }

    fn notified(&mut self, k: &mut dyn Kernel, set: ChannelSet) {
        if !set.contains(channels::SUPERVISOR) {
            return;
        }
        for (child, generation) in self.deaths.since(&self.status) {
            let Some(&(_, ch)) = CLIENT_CHILDREN.iter().find(|(c, _)| *c == child) else {
                continue;
            };
            let released = self.server.release_client(k, ch);
            log::info!(
                "pci: {} instance {generation} ended: {released} claim(s) released",
                CLIENTS
                    .iter()
                    .find(|c| c.channel == ch)
                    .map_or("?", |c| c.name)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_windows_move_below_4_gib_and_board_windows_stay() {
        let mmio = paddrs::MMIO_PADDR;
        let hosted = window(mmio.fake_paddr, mmio.size, Source::HostedFake).unwrap();
        assert!(mmio.fake_paddr >= FOUR_GIB, "fake bases start at 4 GiB");
        assert_eq!(hosted.base, mmio.fake_paddr & (FOUR_GIB - 1));
        assert!(hosted.end() <= FOUR_GIB);
        assert_eq!(hosted.size, mmio.size);
        // qemu_virt_aarch64's board puts pci_mmio at 0x1000_0000; q35 above the ECAM window.
        let board = window(0x1000_0000, mmio.size, Source::Platform).unwrap();
        assert_eq!((board.base, board.size), (0x1000_0000, mmio.size));
        // A fake base whose window would cross 4 GiB gives no window, not a wrong one.
        assert_eq!(window(0x1_f800_0000, 0x1000_0000, Source::HostedFake), None);
    }
}
