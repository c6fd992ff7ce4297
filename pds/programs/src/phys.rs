//! Physical addresses of regions, on whichever platform runs the PD.
//!
//! A PD learns a region's physical base only through `<setvar region_paddr>` in `system.xml`
//! (generated as `sys::<pd>::paddrs`). On seL4 the Microkit tool patches the value into the
//! symbol and the platform hands it out through [`Kernel::region_paddr`]; hosted mode and the
//! monolithic composition have no physical memory of their own, so the runtime's stable fake base
//! ([`PaddrDecl::fake_paddr`], the same one the device model translates) stands in.

use crate::sys::PaddrDecl;
use pd_core::Kernel;

/// Where the address of a region came from, for the bring-up log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The platform's own (seL4: the patched `setvar` symbol).
    Platform,
    /// The hosted runtime's fake base from `system.xml`'s layout.
    HostedFake,
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Platform => "setvar",
            Self::HostedFake => "hosted fake base",
        })
    }
}

/// The physical base of `decl`'s region on this platform, and where it came from.
pub fn paddr(k: &dyn Kernel, decl: PaddrDecl) -> (u64, Source) {
    match k.region_paddr(decl.region) {
        Some(p) => (p, Source::Platform),
        None => (decl.fake_paddr, Source::HostedFake),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pd_core::{Channel, IpcError, MessageInfo, MessageRegisters};

    struct K(Option<u64>, MessageRegisters);

    impl Kernel for K {
        fn pd_name(&self) -> &str {
            "t"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Ok(())
        }
        fn ppcall(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, IpcError> {
            Err(IpcError::Unsupported)
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.1
        }
        fn region_paddr(&self, region: &str) -> Option<u64> {
            self.0.filter(|_| region == "pci_mmio")
        }
        fn now_ns(&self) -> u64 {
            0
        }
    }

    #[test]
    fn the_platform_address_wins_and_hosted_falls_back_to_the_fake_base() {
        let decl = crate::sys::pci::paddrs::MMIO_PADDR;
        assert_eq!(decl.region, "pci_mmio");
        let sel4 = K(Some(0x1000_0000), MessageRegisters::default());
        assert_eq!(paddr(&sel4, decl), (0x1000_0000, Source::Platform));
        let hosted = K(None, MessageRegisters::default());
        assert_eq!(paddr(&hosted, decl), (decl.fake_paddr, Source::HostedFake));
        assert_ne!(decl.fake_paddr, 0);
    }
}
