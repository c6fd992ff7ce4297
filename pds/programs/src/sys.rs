//! Constants generated from `system.xml` by `build.rs` (`sysxml::codegen`): one module per PD,
//! named after it, with `NAME`, `PRIORITY`, `PASSIVE`, and submodules `channels` (a
//! `pd_core::Channel` per channel, named after the peer PD), `children` (a `pd_core::Child` per
//! child PD, parents only), `regions` (a [`RegionDecl`] per mapping, named after the region) and
//! `paddrs` (a [`PaddrDecl`] per `setvar region_paddr`, named after the symbol).
//!
//! ```
//! use pd_programs::sys::gsp;
//! let pci = gsp::channels::PCI; // `k.ppcall(pci, msg)` reaches the pci PD
//! let dma = gsp::regions::GSP_DMA; // mapped at `dma.vaddr` in gsp
//! assert_eq!((dma.name, dma.writable), ("gsp_dma", true));
//! # let _ = pci;
//! ```
//!
//! `system.xml` is the only source of truth: a PD never writes a channel id or an address.

/// A memory region as one PD maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionDecl {
    /// The region's name in `system.xml`.
    pub name: &'static str,
    /// Where the PD sees it.
    pub vaddr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the PD may write it (`perms` has `w`).
    pub writable: bool,
    /// Whether the mapping is cacheable.
    pub cached: bool,
    /// The physical base hosted mode gives it (`sysxml::System::fake_phys_bases`); on seL4 the
    /// real one arrives through `setvar region_paddr`.
    pub fake_paddr: u64,
}

/// A region's physical address as a PD is told it (`<setvar symbol region_paddr>`), whether or
/// not the PD maps the region (the PCI BAR window, DMA pools). [`crate::phys::paddr`] gives the
/// value on the running platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaddrDecl {
    /// The symbol that receives it on seL4.
    pub symbol: &'static str,
    /// The region's name in `system.xml`.
    pub region: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// The physical base hosted mode gives it (as [`RegionDecl::fake_paddr`]).
    pub fake_paddr: u64,
}

/// A PD as the whole-system table lists it (`system::PDS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdDecl {
    /// Its name.
    pub name: &'static str,
    /// Its priority.
    pub priority: u8,
    /// Its `program_image` path, which names the program it runs.
    pub program_image: &'static str,
    /// Index of its parent in `system::PDS`.
    pub parent: Option<usize>,
    /// Its child id under that parent.
    pub id: Option<u8>,
}

include!(concat!(env!("OUT_DIR"), "/sys.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use pd_core::{Channel, Child};

    #[test]
    fn channels_are_named_after_the_peer_with_each_ends_own_id() {
        // system.xml: <end pd="gsp" id="1" pp="true" /><end pd="pci" id="2" />
        assert_eq!(gsp::channels::PCI, Channel::new(1));
        assert_eq!(pci::channels::GSP, Channel::new(2));
        assert_eq!(gsp_model::channels::GPU, Channel::new(3));
        assert_eq!(drm::channels::CLIENT2, Channel::new(4));
    }

    #[test]
    fn system_tables_route_each_channel_end_to_its_peer() {
        let idx = |n: &str| system::PDS.iter().position(|p| p.name == n).unwrap();
        assert_eq!(system::PDS[idx("pci")].parent, Some(idx("supervisor")));
        assert_eq!(system::PDS[idx("gsp_model")].parent, None);
        assert_eq!(system::PDS[idx("client2")].program_image, "client-ext.elf");
        // Both ends of every channel appear, and the gsp -> pci end carries the call right.
        assert_eq!(system::ROUTES.len() % 2, 0);
        let r = system::ROUTES
            .iter()
            .find(|r| r.from == idx("gsp") && r.ch == gsp::channels::PCI)
            .unwrap();
        assert_eq!(
            (r.to, r.to_ch, r.pp),
            (idx("pci"), pci::channels::GSP, true)
        );
        let back = system::ROUTES
            .iter()
            .find(|r| r.from == idx("pci") && r.ch == pci::channels::GSP)
            .unwrap();
        assert!(!back.pp, "calls go one way only");
    }

    #[test]
    fn pd_constants_follow_system_xml() {
        assert_eq!(gsp_model::NAME, "gsp_model");
        assert_eq!(
            [
                client0::PRIORITY,
                drm::PRIORITY,
                gpu::PRIORITY,
                gsp::PRIORITY
            ],
            [100, 160, 180, 200]
        );
        assert_eq!((pci::PASSIVE, gsp::PASSIVE), (true, false));
        assert_eq!(supervisor::children::PCI, Child::new(1));
        assert_eq!(supervisor::children::CLIENT2, Child::new(8));
    }

    #[test]
    fn regions_carry_mapping_and_fake_physical_address() {
        let dma = gsp::regions::GSP_DMA;
        assert_eq!(
            (dma.name, dma.vaddr, dma.size),
            ("gsp_dma", 0x4000_0000, 0x600_0000)
        );
        assert_eq!((dma.writable, dma.cached), (true, true));
        // The model sees the same region at the same physical base.
        assert_eq!(gsp_model::regions::GSP_DMA.fake_paddr, dma.fake_paddr);
        let (ecam, fw) = (pci::regions::PCI_ECAM, gsp::regions::GSP_FW);
        assert_eq!((ecam.cached, fw.writable), (false, false));
        assert_ne!(gsp::regions::GSP_FW.fake_paddr, dma.fake_paddr);
    }
}
