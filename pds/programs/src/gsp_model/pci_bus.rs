//! The model PD's answer to the `pci` PD: configuration space of the simulated GPU's PCIe
//! topology (`gsp_model::pci::Pci`, built on pci-server's emulator), one [`pci_api::cfg`] PPC per
//! access on the model's channel from `pci`. Every other channel goes to the model PD's own
//! handler.
//!
//! The topology is that of [`CHIP`], with the identity the GSP model reports for it
//! (`gsp_model::PciIdentity::for_chip`), so pci's table, the gsp PD's claim and
//! `NV_PMC_BOOT_0` agree. What a config write changes on the device (`PciEffect`: BAR addresses
//! that `GSP_SET_SYSTEM_INFO` must match, a function-level reset) is the GPU model's business: a
//! model PD that has one calls `Pci::serve` itself and applies the effect
//! (`GspModel::set_bars`, `GspModel::reset`); this wrapper serves a handler without one.

use crate::sys::gsp_model::channels;
use gsp::chip::Chipset;
use gsp_model::pci::Pci;
use gsp_model::PciIdentity;
use pci_api::cfg::{ConfigError, ConfigRequest};
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo};

/// The chip the model simulates unless its PD says otherwise.
pub const CHIP: Chipset = Chipset::GA102;

/// The model PD's handler `H` with `pci`'s channel answered from the GPU's topology.
#[derive(Debug)]
pub struct WithPciBus<H> {
    pci: Option<Pci>,
    inner: H,
}

impl<H: Handler> WithPciBus<H> {
    /// `inner` plus the topology of `chip`.
    pub fn new(chip: Chipset, inner: H) -> Self {
        let pci = Pci::new(chip, &PciIdentity::for_chip(chip))
            .inspect_err(|e| log::error!("gsp_model: no PCIe topology for {chip:?}: {e}"))
            .ok();
        if pci.is_some() {
            log::info!(
                "gsp_model: PCIe topology of a {} (device {:#06x}) on the pci channel",
                chip.name(),
                PciIdentity::for_chip(chip).device
            );
        }
        Self { pci, inner }
    }
}

impl<H: Handler> Handler for WithPciBus<H> {
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        if ch != channels::PCI {
            return self.inner.protected(k, ch, msg);
        }
        match self.pci.as_mut() {
            Some(pci) => pci.serve(k, msg).0,
            None => ConfigRequest::reply(Err(ConfigError::Transport), k.mrs()),
        }
    }

    fn notified(&mut self, k: &mut dyn Kernel, set: ChannelSet) {
        self.inner.notified(k, set);
    }
}
