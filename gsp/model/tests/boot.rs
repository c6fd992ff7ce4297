//! The driver-side boot against the model, for each chip, and the boot's strictness: every
//! deviation stops the boot with a descriptive error.
mod common;

use common::{Driver, Seen};
use gsp::chip::Chipset;
use gsp::fw::current::rpc::MsgFunction;
use gsp::regs::Falcon;
use gsp_model::boot::{BootError, Phase};

#[test]
fn boots_each_chip_and_answers_static_info() {
    for chip in [
        Chipset::TU102,
        Chipset::GA100,
        Chipset::GA102,
        Chipset::AD102,
    ] {
        let mut d = Driver::new(chip);
        d.boot();
        assert_eq!(d.model().phase(), Phase::Running, "{chip:?}");
        // The two boot commands were answered (replies nobody waited for reach the sink).
        assert_eq!(
            d.sink
                .0
                .iter()
                .filter(|s| matches!(s, Seen::Unexpected(_)))
                .count(),
            2,
            "{chip:?}: {:?}",
            d.sink.0
        );
        let (rpc, mut dev, mut clock, sink) = d.call_parts();
        let info = rpc.get_static_info(&mut dev, &mut clock, sink).unwrap();
        assert_eq!(info.fb_length, common::FB_SIZE);
        let name = String::from_utf8_lossy(&info.gpuNameString);
        assert!(
            name.starts_with(&format!("NVIDIA {}", chip.name().to_uppercase())),
            "{name}"
        );
        assert_eq!(info.fbRegionInfoParams.numFBRegions, 2);
        assert_eq!(info.fbRegionInfoParams.fbRegion[1].base, 16 << 20);
        assert_eq!(
            [
                info.hInternalClient,
                info.hInternalDevice,
                info.hInternalSubdevice
            ],
            gsp_model::firmware::INTERNAL_HANDLES
        );
        assert!(d
            .model()
            .rm
            .object(info.hInternalClient, info.hInternalSubdevice)
            .is_some());
    }
}

/// Boot up to (not including) the booter, leaving the structures in place.
fn prepared(chip: Chipset) -> Driver {
    let mut d = Driver::new(chip);
    d.identify();
    d.flush_page();
    d.layout();
    d.fwsec_frts();
    d.wpr_meta(|_| {});
    d.libos_and_queues();
    d.queue_boot_commands();
    d
}

fn failed_with(d: &Driver) -> BootError {
    assert_eq!(d.dev.0.borrow().phase(), Phase::Failed);
    d.dev.0.borrow().boot_error().expect("a boot error")
}

#[test]
fn a_falcon_reset_before_the_flush_page_fails() {
    let mut d = Driver::new(Chipset::GA102);
    d.reset_falcon(Falcon::Gsp);
    assert_eq!(failed_with(&d), BootError::FlushPageNotRegistered);
}

#[test]
fn the_booter_before_fwsec_fails() {
    let mut d = Driver::new(Chipset::AD102);
    d.flush_page();
    d.reset_falcon(Falcon::Sec2);
    d.start_falcon(Falcon::Sec2);
    assert_eq!(
        failed_with(&d),
        BootError::UnexpectedSec2Start {
            phase: Phase::PowerOn
        }
    );
}

#[test]
fn fwsec_needs_a_reset_falcon_and_runs_once() {
    let mut d = Driver::new(Chipset::TU102);
    d.flush_page();
    d.start_falcon(Falcon::Gsp);
    assert_eq!(
        failed_with(&d),
        BootError::NotReset {
            falcon: Falcon::Gsp
        }
    );
    let mut d = Driver::new(Chipset::TU102);
    d.flush_page();
    d.fwsec_frts();
    d.reset_falcon(Falcon::Gsp);
    d.start_falcon(Falcon::Gsp);
    assert_eq!(
        failed_with(&d),
        BootError::UnexpectedGspStart {
            phase: Phase::FrtsDone
        }
    );
}

#[test]
fn a_wrong_meta_field_is_refused_by_the_booter() {
    for (field, edit) in [
        (
            "frtsOffset",
            (|m| m.frtsOffset += 0x1000) as fn(&mut gsp::fw::current::wpr::GspFwWprMeta),
        ),
        ("magic", |m| m.magic ^= 1),
        ("gspFwHeapSize", |m| m.gspFwHeapSize -= 1 << 20),
        ("sizeOfRadix3Elf", |m| m.sizeOfRadix3Elf += 1),
        ("bootloaderManifestOffset", |m| {
            m.bootloaderManifestOffset = 0x9000
        }),
    ] {
        let mut d = Driver::new(Chipset::GA102);
        d.identify();
        d.flush_page();
        d.layout();
        d.fwsec_frts();
        d.wpr_meta(edit);
        d.libos_and_queues();
        d.queue_boot_commands();
        let mbox = d.booter();
        assert_eq!(mbox, 6, "{field}");
        match failed_with(&d) {
            BootError::WprMeta { field: f, .. } => assert_eq!(f, field),
            e => panic!("{field}: {e:?}"),
        }
    }
}

#[test]
fn a_radix3_map_to_the_wrong_page_is_caught() {
    let mut d = prepared(Chipset::AD102);
    // Scribble over one image page the map points at.
    let meta: gsp::fw::current::wpr::GspFwWprMeta = d
        .dma
        .region
        .read((d.meta_addr - common::SYS_BASE) as usize)
        .unwrap();
    let level0 = meta.sysmemAddrOfRadix3Elf;
    let read = |d: &Driver, pa: u64| {
        d.dma
            .region
            .read::<u64>((pa - common::SYS_BASE) as usize)
            .unwrap()
    };
    let level1 = read(&d, level0);
    let level2 = read(&d, level1);
    let page5 = read(&d, level2 + 5 * 8);
    d.dma
        .region
        .fill((page5 - common::SYS_BASE) as usize + 100, 1, 0xee)
        .unwrap();
    assert_ne!(d.booter(), 0);
    assert_eq!(
        failed_with(&d),
        BootError::Radix3 {
            page: 5,
            what: "page content differs from the image"
        }
    );
}

#[test]
fn the_booter_needs_both_falcons_reset() {
    let mut d = prepared(Chipset::TU102);
    d.mailboxes(Falcon::Gsp, d.libos_addr);
    d.reset_falcon(Falcon::Sec2);
    d.mailboxes(Falcon::Sec2, d.meta_addr);
    d.start_falcon(Falcon::Sec2);
    assert_eq!(
        failed_with(&d),
        BootError::NotReset {
            falcon: Falcon::Gsp
        }
    );
}

#[test]
fn bad_libos_arguments_stop_gsp_rm() {
    let mut d = prepared(Chipset::GA102);
    // Swap LOGINTR and LOGRM.
    let at = (d.libos_addr - common::SYS_BASE) as usize;
    let a: [u8; 32] = d.dma.region.read(at + 32).unwrap();
    let b: [u8; 32] = d.dma.region.read(at + 64).unwrap();
    d.dma.region.write(at + 32, &b).unwrap();
    d.dma.region.write(at + 64, &a).unwrap();
    assert_eq!(d.booter(), 0, "the booter itself is fine");
    assert!(matches!(failed_with(&d), BootError::Libos { index: 1, .. }));
}

#[test]
fn boot_commands_must_come_first_and_in_order() {
    let mut d = prepared(Chipset::AD102);
    // A third, early command is fine (it waits); but start a fresh driver that sends only the
    // registry first.
    d.booter();
    assert_eq!(d.model().phase(), Phase::AwaitResume);

    let mut d = Driver::new(Chipset::AD102);
    d.identify();
    d.flush_page();
    d.layout();
    d.fwsec_frts();
    d.wpr_meta(|_| {});
    d.libos_and_queues();
    {
        let (rpc, mut dev, mut clock, _) = d.call_parts();
        let reg = gsp::rpc::SetRegistry {
            entries: &gsp::rpc::NOVA_REGISTRY,
            convention: Default::default(),
        };
        rpc.post(&reg, &mut dev, &mut clock).unwrap();
    }
    d.booter();
    assert!(
        matches!(failed_with(&d), BootError::BootCommand { what, .. } if what.contains("GSP_SET_SYSTEM_INFO"))
    );
}

#[test]
fn a_sequencer_run_that_skips_its_writes_is_refused() {
    let mut d = prepared(Chipset::GA102);
    assert_eq!(d.booter(), 0);
    let seq = d.wait(&[MsgFunction::GspRunCpuSequencer]).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.run_sequencer(&seq, true)));
    assert!(matches!(failed_with(&d), BootError::Resume { .. }));
    // No GSP_INIT_DONE ever comes.
    assert!(d.wait(&[MsgFunction::GspInitDone]).is_err());
}

#[test]
fn flr_resets_the_gpu_for_a_second_boot() {
    let mut d = Driver::new(Chipset::TU102);
    d.boot();
    d.model().reset();
    assert_eq!(d.model().phase(), Phase::PowerOn);
    let Driver { dev, dma, .. } = d;
    let mut d2 = Driver::with(Chipset::TU102, dev, dma);
    d2.boot();
    assert_eq!(d2.model().phase(), Phase::Running);
}
