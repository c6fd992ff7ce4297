//! The pci PD as the system runs it: pci-server's enumeration over PPCs to the model PD's config
//! space (the real model PD handler, `gsp_model::ModelPd`), BARs placed in `pci_mmio`, the policy from system.xml's
//! channels, and claims released when the supervisor reports a client restarted.
mod common;

use common::{idx, set, status_page, vacant};
use pci_api::{Bdf, DeviceFlags, PciClient, PciError, Width};
use pci_server::{regs, ConfigSpace, ModelPort, PpcConfig};
use pd_core::Kernel;
use pd_programs::pci::{self, PciPd};
use pd_programs::status::PdState;
use pd_programs::sys::{self, supervisor::children};

#[test]
fn the_gpu_is_enumerated_placed_granted_to_gsp_only_and_released_on_its_restart() {
    let page = status_page();
    let (model_pd, pci_pd, gsp, gpu) = (idx("gsp_model"), idx("pci"), idx("gsp"), idx("gpu"));
    let sys = vacant();
    let image_free_model = gsp_model::GspModel::new(
        gsp_model::ModelConfig::new(pd_programs::gsp_model::CHIP),
        gsp_model::phys::Memory::new(gsp_model::phys::FbLayout::HOSTED),
        &[],
        vec![0u8; 0x1_0000].leak(),
    );
    let mut model = pd_programs::gsp_model::ModelPd::new(image_free_model);
    let mut sys = sys.with_handler(model_pd, &mut model);
    let windows = pci::windows(&sys.kernel(pci_pd));
    let mut pci = PciPd::new(
        &mut sys.kernel(pci_pd),
        ModelPort::new(sys::pci::channels::GSP_MODEL),
        windows,
        page.read_only(),
    );
    let found: Vec<_> = pci
        .server()
        .functions()
        .iter()
        .map(|f| (f.bdf, f.vendor, f.device))
        .collect();
    let window = windows.mem.unwrap();
    let mut sys = sys.with_handler(pci_pd, &mut pci);

    // Host bridge and root port of the model, the GPU of the model's chip and its audio.
    let gpu_fn = Bdf::new(1, 0, 0).unwrap();
    let hda_fn = Bdf::new(1, 0, 1).unwrap();
    let chip = gsp_model::PciIdentity::for_chip(pd_programs::gsp_model::CHIP);
    assert_eq!(
        found,
        [
            (Bdf::new(0, 0, 0).unwrap(), 0x1b36, 0x0008),
            (Bdf::new(0, 1, 0).unwrap(), 0x1b36, 0x000c),
            (gpu_fn, 0x10de, chip.device),
            (hda_fn, 0x10de, 0x1aef),
        ]
    );

    // gpu lists: it sees the GPU, may not claim it, and cannot.
    let as_gpu = PciClient::new(sys::gpu::channels::PCI);
    let (entry, total) = as_gpu.list(&mut sys.kernel(gpu), 2).unwrap();
    assert_eq!((entry.bdf, entry.class >> 8, total), (gpu_fn, 0x0300, 4));
    assert_eq!(entry.flags.0 & DeviceFlags::ALLOWED, 0);
    assert_eq!(
        as_gpu.claim(&mut sys.kernel(gpu), gpu_fn),
        Err(PciError::NotAllowed)
    );

    // gsp claims the GPU (not its audio function) and finds its BARs inside pci_mmio.
    let as_gsp = PciClient::new(sys::gsp::channels::PCI);
    let (entry, _) = as_gsp.list(&mut sys.kernel(gsp), 2).unwrap();
    assert_ne!(entry.flags.0 & DeviceFlags::ALLOWED, 0);
    assert_eq!(
        as_gsp.claim(&mut sys.kernel(gsp), hda_fn),
        Err(PciError::NotAllowed)
    );
    as_gsp.claim(&mut sys.kernel(gsp), gpu_fn).unwrap();
    assert_eq!(
        as_gsp.claim(&mut sys.kernel(gsp), gpu_fn),
        Err(PciError::AlreadyClaimed)
    );
    for (index, size) in [(0, 16 << 20), (1, 64 << 20), (3, 32 << 20)] {
        let bar = as_gsp.bar(&mut sys.kernel(gsp), gpu_fn, index).unwrap();
        assert!(bar.assigned && bar.size == size, "{bar:?}");
        assert!(
            window.contains(bar.phys) && bar.phys + bar.size <= window.end(),
            "BAR{index} {bar:?} outside {window}"
        );
        assert_eq!(bar.window_offset, bar.phys - window.base);
    }
    let (base, _) = pd_programs::phys::paddr(&sys.kernel(pci_pd), sys::pci::paddrs::MMIO_PADDR);
    assert_eq!(
        window.base,
        base % (1 << 32),
        "hosted window: fake base below 4 GiB"
    );

    // gsp turns on memory decoding and bus mastering, as a driver does before DMA.
    let cmd = as_gsp
        .read_config(&mut sys.kernel(gsp), gpu_fn, regs::COMMAND, Width::U16)
        .unwrap();
    let on = cmd | u32::from(regs::CMD_MEMORY | regs::CMD_MASTER);
    as_gsp
        .write_config(&mut sys.kernel(gsp), gpu_fn, regs::COMMAND, Width::U16, on)
        .unwrap();
    let device_cmd = |sys: &mut common::System<'_>| {
        let mut k = sys.kernel(pci_pd);
        PpcConfig::new(&mut k, sys::pci::channels::GSP_MODEL)
            .read16(gpu_fn, regs::COMMAND)
            .unwrap()
    };
    assert_ne!(device_cmd(&mut sys) & regs::CMD_MASTER, 0);

    // gpu restarts: gsp's claim stays.
    set(&page, children::GPU, 2, PdState::Running);
    supervisor_notifies(&mut sys);
    assert!(as_gsp
        .read_config(&mut sys.kernel(gsp), gpu_fn, 0, Width::U32)
        .is_ok());

    // gsp restarts: its claim is dropped and the GPU stops mastering; the new gsp claims again.
    set(&page, children::GSP, 2, PdState::Running);
    supervisor_notifies(&mut sys);
    assert_eq!(device_cmd(&mut sys) & regs::CMD_MASTER, 0);
    assert_eq!(
        as_gsp.read_config(&mut sys.kernel(gsp), gpu_fn, 0, Width::U32),
        Err(PciError::NotClaimed)
    );
    as_gsp.claim(&mut sys.kernel(gsp), gpu_fn).unwrap();
    // The same notification again (nothing new on the page) releases nothing.
    supervisor_notifies(&mut sys);
    assert!(as_gsp
        .read_config(&mut sys.kernel(gsp), gpu_fn, 0, Width::U32)
        .is_ok());
}

fn supervisor_notifies(sys: &mut common::System<'_>) {
    sys.kernel(idx("supervisor"))
        .notify(sys::supervisor::channels::PCI)
        .unwrap();
    assert_eq!(sys.run_pending(8), 1);
}
