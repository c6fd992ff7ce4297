//! The gsp crate's own boot state machine (`gsp::boot::boot`, all fifteen steps) against the
//! model for each chip, with the model's `SecureBoot` and the synthetic firmware files; and the
//! driver-side error a deviation produces.
mod common;

use common::{Dev, Dma, Sink};
use gsp::boot::{
    boot, BootBuffers, BootCause, BootConfig, BootDevice, BootFirmware, BootInput, BootTraceRing,
    DmaBuf, State,
};
use gsp::chip::Chipset;
use gsp::cmdq::QUEUE_REGION_SIZE;
use gsp::elf::GspImage;
use gsp::fw::current::libos::LOG_BUFFER_SIZE;
use gsp::radix3::Geometry;
use gsp_model::boot::Phase;
use gsp_model::fwimage;
use gsp_model::secure::ModelSecureBoot;

fn buf(dma: &mut Dma, len: usize) -> DmaBuf {
    let (pa, region) = dma.alloc(len.next_multiple_of(0x1000), 0x1000);
    DmaBuf { region, dma: pa }
}

fn bootloader() -> &'static [u8] {
    let b: &'static mut [u8] = vec![0u8; fwimage::bootloader_size()].leak();
    fwimage::build_bootloader(b).unwrap();
    b
}

fn run(chip: Chipset) -> (Result<State, (State, BootCause)>, common::Shared) {
    let (m, mut dma) = common::model(chip);
    (run_on(chip, &m, &mut dma), m)
}

/// One boot by a fresh driver instance (new buffers) on the device `m`.
fn run_on(chip: Chipset, m: &common::Shared, dma: &mut Dma) -> Result<State, (State, BootCause)> {
    let gsp_image = m.borrow().firmware_image();
    let img = GspImage::parse(gsp_image).unwrap();
    let g = Geometry::new(img.fwimage().len() as u64).unwrap();
    let buffers = BootBuffers {
        queues: buf(dma, QUEUE_REGION_SIZE),
        libos_args: buf(dma, 0x1000),
        logs: [
            buf(dma, LOG_BUFFER_SIZE),
            buf(dma, LOG_BUFFER_SIZE),
            buf(dma, LOG_BUFFER_SIZE),
        ],
        rmargs: buf(dma, 0x1000),
        fwimage: buf(dma, g.image_buffer_len()),
        radix3: buf(dma, g.table_pages() * 0x1000),
        bootloader: buf(dma, 0x5000),
        signature: buf(dma, img.signature(chip).unwrap().len()),
        wpr_meta: buf(dma, 0x1000),
        flush_page: buf(dma, 0x1000),
    };
    let sysinfo = common::sysinfo(m);
    let input = BootInput {
        firmware: BootFirmware {
            gsp: gsp_image,
            bootloader: bootloader(),
        },
        buffers,
        config: BootConfig::new(sysinfo),
        rx_buffer: vec![0u8; 1 << 20].leak(),
    };
    let (mut io, mut clock) = (Dev(m.clone()), Dev(m.clone()));
    let mut sink = Sink::default();
    let mut trace = BootTraceRing::new();
    let dev = BootDevice {
        io: &mut io,
        clock: &mut clock,
        secure: &mut ModelSecureBoot,
        sink: &mut sink,
    };
    boot(input, dev, &mut trace)
        .map(|b| {
            assert_eq!(b.static_info.fb_length, common::FB_SIZE);
            assert_eq!(b.layout.frts.end, common::FB_SIZE - (1 << 20));
            State::Running
        })
        .map_err(|e| (e.step, e.cause))
}

#[test]
fn the_gsp_crates_boot_runs_against_the_model_on_each_chip() {
    for chip in [
        Chipset::TU102,
        Chipset::GA100,
        Chipset::GA102,
        Chipset::AD102,
    ] {
        let (r, m) = run(chip);
        assert_eq!(
            r,
            Ok(State::Running),
            "{chip:?}: model says {:?}",
            m.borrow().boot_error()
        );
        assert_eq!(m.borrow().phase(), Phase::Running);
        // The driver wrote the bootloader's app_version.
        assert_eq!(m.borrow().bar.gsp.os, fwimage::BOOTLOADER_APP_VERSION);
        // Every register the boot touched is one the model models.
        assert_eq!(m.borrow().bar.unclaimed, 0, "{chip:?}");
    }
}

#[test]
fn a_gpu_that_was_not_reset_refuses_a_second_boot_until_an_flr() {
    let (m, mut dma) = common::model(Chipset::GA102);
    assert_eq!(run_on(Chipset::GA102, &m, &mut dma), Ok(State::Running));
    // A restarted driver finds WPR2 from the previous boot and refuses, as nova-core does.
    assert_eq!(
        run_on(Chipset::GA102, &m, &mut dma),
        Err((State::FwsecFrts, BootCause::Wpr2AlreadySet))
    );
    // After a function-level reset the GPU boots again.
    m.borrow_mut().reset();
    assert_eq!(run_on(Chipset::GA102, &m, &mut dma), Ok(State::Running));
}
