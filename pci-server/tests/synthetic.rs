//! Synthetic topologies on the emulated bus: enumeration, bus numbering, BAR assignment, refusal,
//! ARI, limits, and the error paths of BAR sizing.
mod common;

use common::{bdf, capture_logs, logs, Counting, Flaky};
use pci_api::{BarKind, Bdf, Width};
use pci_server::assign::{self, Window, Windows};
use pci_server::bar;
use pci_server::emul::{EmuBar, EmuFunction, PcieType, Slot, Topology};
use pci_server::enumerate::{self, EnumError, FunctionTable, MAX_DEPTH};
use pci_server::probe::{self, Function, State};
use pci_server::{regs, ConfigSpace};

const MIB: u64 = 1 << 20;

/// Indices of interesting functions in [`three_deep`].
struct Tree {
    t: Box<Topology<16>>,
    gpu: usize,
    audio: usize,
    old: [usize; 2],
}

/// host bridge 00:00.0, NIC 00:02.0 (mem32 + io), root port 00:01.0 -> switch upstream port ->
/// two downstream ports: one to a multi-function GPU (64-bit prefetchable BARs) and one to a
/// conventional PCI bridge with two devices at device numbers 0 and 3.
fn three_deep() -> Tree {
    let mut t: Box<Topology<16>> = Box::default();
    t.add(
        Slot::At(bdf(0, 0, 0)),
        EmuFunction::host_bridge(0x8086, 0x29c0),
    )
    .unwrap();
    let mut rp = EmuFunction::bridge(0x1b36, 0x000c);
    rp.pcie(PcieType::RootPort, false).unwrap();
    let rp = t.add(Slot::At(bdf(0, 1, 0)), rp).unwrap();
    let mut nic = EmuFunction::endpoint(0x8086, 0x10d3, 0x02_00_00);
    nic.bar(
        0,
        EmuBar::Mem32 {
            size: 128 << 10,
            prefetchable: false,
        },
    )
    .unwrap()
    .bar(2, EmuBar::Io { size: 32 })
    .unwrap();
    t.add(Slot::At(bdf(0, 2, 0)), nic).unwrap();
    let mut up = EmuFunction::bridge(0x10b5, 0x8747);
    up.pcie(PcieType::Upstream, false).unwrap();
    let up = t
        .add(
            Slot::Below {
                bridge: rp,
                devfn: 0,
            },
            up,
        )
        .unwrap();
    let mut down = [0; 2];
    for (i, d) in down.iter_mut().enumerate() {
        let mut f = EmuFunction::bridge(0x10b5, 0x8747);
        f.pcie(PcieType::Downstream, false).unwrap();
        *d = t
            .add(
                Slot::Below {
                    bridge: up,
                    devfn: (i as u8) << 3,
                },
                f,
            )
            .unwrap();
    }
    let mut gpu = gpu_function();
    gpu.multi_function()
        .pcie(PcieType::Endpoint, false)
        .unwrap()
        .msix(8, (0, 0xb90000), (0, 0xba0000))
        .unwrap();
    let gpu = t
        .add(
            Slot::Below {
                bridge: down[0],
                devfn: 0,
            },
            gpu,
        )
        .unwrap();
    let mut hda = EmuFunction::endpoint(0x10de, 0x1aef, 0x04_03_00);
    hda.bar(
        0,
        EmuBar::Mem32 {
            size: 16 << 10,
            prefetchable: false,
        },
    )
    .unwrap();
    let audio = t
        .add(
            Slot::Below {
                bridge: down[0],
                devfn: 1,
            },
            hda,
        )
        .unwrap();
    let pci = t
        .add(
            Slot::Below {
                bridge: down[1],
                devfn: 0,
            },
            EmuFunction::bridge(0x8086, 0x244e),
        )
        .unwrap();
    let mut old = [0; 2];
    for (i, dev) in [0u8, 3].iter().enumerate() {
        let mut f = EmuFunction::endpoint(0x1234, 0x1111 + u16::from(*dev), 0x03_00_00);
        f.legacy_only()
            .bar(
                0,
                EmuBar::Mem32 {
                    size: MIB as u32,
                    prefetchable: true,
                },
            )
            .unwrap();
        old[i] = t
            .add(
                Slot::Below {
                    bridge: pci,
                    devfn: dev << 3,
                },
                f,
            )
            .unwrap();
    }
    Tree { t, gpu, audio, old }
}

/// A GPU function 0 as Turing..Ada boards have it: BAR0 16 MiB registers, BAR1 256 MiB and BAR3
/// 32 MiB 64-bit prefetchable apertures, BAR5 128 bytes of I/O.
fn gpu_function() -> EmuFunction {
    let mut gpu = EmuFunction::endpoint(0x10de, 0x2204, 0x03_00_00);
    let pref64 = |size| EmuBar::Mem64 {
        size,
        prefetchable: true,
    };
    gpu.bar(
        0,
        EmuBar::Mem32 {
            size: 16 << 20,
            prefetchable: false,
        },
    )
    .and_then(|g| g.bar(1, pref64(256 << 20)))
    .and_then(|g| g.bar(3, pref64(32 << 20)))
    .and_then(|g| g.bar(5, EmuBar::Io { size: 128 }))
    .unwrap();
    gpu
}

fn windows(pref: bool) -> Windows {
    Windows {
        mem: Some(Window {
            base: 0x1000_0000,
            size: 512 * MIB,
        }),
        pref: pref.then_some(Window {
            base: 0x40_0000_0000,
            size: 1 << 32,
        }),
        io: Some(Window {
            base: 0x1000,
            size: 0xf000,
        }),
    }
}

fn find(table: &FunctionTable, b: Bdf) -> &Function {
    table
        .iter()
        .find(|f| f.bdf == b)
        .unwrap_or_else(|| panic!("{b} not found"))
}

/// Every BAR inside the window of its class, aligned, and no two overlapping; every function's
/// BARs inside its parent bridge's window; every bridge window inside its parent's.
fn check_layout(table: &FunctionTable, w: &Windows) {
    let mut spans: Vec<(u64, u64, Bdf)> = Vec::new();
    for f in table.iter().filter(|f| f.state == State::Ok) {
        for b in f.bars().filter(|b| b.assigned) {
            assert_eq!(b.addr % b.size, 0, "{} BAR{} misaligned", f.bdf, b.index);
            let class = w.class_of(b);
            let win = w.get(class).unwrap();
            assert!(
                b.addr >= win.base && b.addr + b.size <= win.end(),
                "{} BAR{} outside window",
                f.bdf,
                b.index
            );
            if b.kind != BarKind::Mem64 {
                assert!(b.addr + b.size <= 1 << 32);
            }
            if b.kind != BarKind::Io {
                spans.push((b.addr, b.addr + b.size, f.bdf));
            }
            let mut parent = f.parent;
            while let Some(p) = parent {
                let br = &table[usize::from(p)];
                let info = br.bridge.unwrap();
                let r = match class {
                    assign::Res::Io => info.io,
                    assign::Res::Mem => info.mem,
                    assign::Res::Pref => info.pref,
                }
                .unwrap_or_else(|| panic!("{} has no window for {} BAR{}", br.bdf, f.bdf, b.index));
                assert!(
                    b.addr >= r.base && b.addr + b.size - 1 <= r.limit,
                    "{} BAR{} outside {}'s window",
                    f.bdf,
                    b.index,
                    br.bdf
                );
                parent = br.parent;
            }
        }
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "{} and {} overlap",
            pair[0].2,
            pair[1].2
        );
    }
}

#[test]
fn three_deep_bridges_are_numbered_depth_first_and_windows_nest() {
    let mut tree = three_deep();
    let mut table = FunctionTable::new();
    let stats = enumerate::enumerate(tree.t.as_mut(), 0, &mut table).unwrap();
    let found: Vec<String> = table.iter().map(|f| f.bdf.to_string()).collect();
    assert_eq!(
        found,
        [
            "00:00.0", "00:01.0", "00:02.0", "01:00.0", "02:00.0", "02:01.0", "03:00.0", "03:00.1",
            "04:00.0", "05:00.0", "05:03.0"
        ]
    );
    assert_eq!(stats.last_bus, 5);
    let buses = |b: Bdf| {
        let i = find(&table, b).bridge.unwrap();
        (i.primary, i.secondary, i.subordinate)
    };
    assert_eq!(buses(bdf(0, 1, 0)), (0, 1, 5));
    assert_eq!(buses(bdf(1, 0, 0)), (1, 2, 5));
    assert_eq!(buses(bdf(2, 0, 0)), (2, 3, 3));
    assert_eq!(buses(bdf(2, 1, 0)), (2, 4, 5));
    assert_eq!(buses(bdf(4, 0, 0)), (4, 5, 5));
    // The registers say the same as the table.
    assert_eq!(
        tree.t.read32(bdf(2, 1, 0), regs::PRIMARY_BUS).unwrap() & 0xff_ffff,
        0x05_04_02
    );
    // The GPU's functions were sized: 64-bit prefetchable BARs span two slots.
    let gpu = find(&table, bdf(3, 0, 0));
    let sizes: Vec<(u8, BarKind, bool, u64)> = gpu
        .bars()
        .map(|b| (b.index, b.kind, b.prefetchable, b.size))
        .collect();
    assert_eq!(
        sizes,
        [
            (0, BarKind::Mem32, false, 16 * MIB),
            (1, BarKind::Mem64, true, 256 * MIB),
            (3, BarKind::Mem64, true, 32 * MIB),
            (5, BarKind::Io, false, 128)
        ]
    );
    assert!(gpu.msix_fits && gpu.msix.unwrap().entries == 8);

    for pref in [true, false] {
        let mut tree = three_deep();
        let w = windows(pref);
        enumerate::enumerate(tree.t.as_mut(), 0, &mut table).unwrap();
        capture_logs();
        let outcome = assign::assign(tree.t.as_mut(), &mut table, &w).unwrap();
        assert_eq!(outcome.refused, 0, "{:#?}", logs());
        check_layout(&table, &w);
        // Programmed into the device, not just the table.
        let gpu = find(&table, bdf(3, 0, 0));
        let bar1 = gpu.bars[1].unwrap();
        let f = tree.t.function(tree.gpu).unwrap();
        let programmed =
            u64::from(f.read(0x14, Width::U32) & !0xf) | u64::from(f.read(0x18, Width::U32)) << 32;
        assert_eq!(programmed, bar1.addr);
        assert_eq!(pref, bar1.addr >= 1 << 32);
        // Endpoints decode but do not master until their driver says so; bridges do both.
        assert_eq!(
            f.read(4, Width::U16) & 7,
            u32::from(regs::CMD_MEMORY | regs::CMD_IO)
        );
        assert_eq!(tree.t.read16(bdf(2, 0, 0), regs::COMMAND).unwrap() & 7, 7);
        let hda = tree.t.function(tree.audio).unwrap();
        assert_eq!(hda.read(4, Width::U16) & 7, u32::from(regs::CMD_MEMORY));
        // Devices behind the conventional bridge got their (prefetchable, 32-bit) BARs too.
        for i in tree.old {
            assert_ne!(tree.t.function(i).unwrap().read(0x10, Width::U32) & !0xf, 0);
        }
    }
}

#[test]
fn bars_that_do_not_fit_refuse_their_device_with_a_clear_line() {
    capture_logs();
    let mut tree = three_deep();
    let mut table = FunctionTable::new();
    // One 256 MiB memory window: the GPU's 256 MiB BAR1 cannot fit beside everything else.
    let w = Windows {
        mem: Some(Window {
            base: 0x1000_0000,
            size: 256 * MIB,
        }),
        pref: None,
        io: None,
    };
    enumerate::enumerate(tree.t.as_mut(), 0, &mut table).unwrap();
    let before = tree.t.function(tree.gpu).unwrap().bytes().to_vec();
    let outcome = assign::assign(tree.t.as_mut(), &mut table, &w).unwrap();
    assert_eq!(outcome.refused, 1);
    assert_eq!(find(&table, bdf(3, 0, 0)).state, State::Refused);
    let lines = logs();
    assert!(
        lines.iter().any(|l| l.starts_with(
            "pci: 03:00.0 BAR1 (256 MiB pref64) does not fit window mem [0x10000000-0x1fffffff]"
        )),
        "{lines:#?}"
    );
    // I/O BARs without an I/O window are left alone, with a line saying so.
    assert!(
        lines
            .iter()
            .any(|l| l == "pci: 00:02.0 BAR2 (32 B io) left unassigned: no io window"),
        "{lines:#?}"
    );
    // The refused GPU is as it was (BARs at 0), decoding and mastering off; the rest fits.
    let gpu = tree.t.function(tree.gpu).unwrap();
    assert_eq!(gpu.bytes()[0x10..0x28], before[0x10..0x28]);
    assert_eq!(gpu.read(4, Width::U16) & 7, 0);
    assert_eq!(find(&table, bdf(3, 0, 1)).state, State::Ok);
    check_layout(&table, &w);

    // Without any memory window everything with memory BARs is refused, one by one.
    let mut tree = three_deep();
    enumerate::enumerate(tree.t.as_mut(), 0, &mut table).unwrap();
    let outcome = assign::assign(tree.t.as_mut(), &mut table, &Windows::default()).unwrap();
    assert_eq!(outcome.refused, 5);
    assert!(logs()
        .iter()
        .any(|l| l.contains("does not fit: no mem window configured")));
}

#[test]
fn absent_functions_read_all_ones_and_hidden_buses_stay_hidden() {
    let mut tree = three_deep();
    for w in [Width::U8, Width::U16, Width::U32] {
        assert_eq!(tree.t.read(bdf(0, 9, 0), 0, w).unwrap(), w.mask());
    }
    tree.t.write32(bdf(0, 9, 0), 0x10, 0).unwrap();
    assert!(probe::probe(tree.t.as_mut(), bdf(0, 9, 0))
        .unwrap()
        .is_none());
    // Before the enumerator numbers the buses nothing below the root port answers.
    assert_eq!(tree.t.read32(bdf(1, 0, 0), 0).unwrap(), u32::MAX);
    assert_eq!(tree.t.read32(bdf(3, 0, 0), 0).unwrap(), u32::MAX);
    // A 256-byte function reads all ones above 0xff; its size is 256 to the probe.
    let mut table = FunctionTable::new();
    enumerate::enumerate(tree.t.as_mut(), 0, &mut table).unwrap();
    assert_eq!(tree.t.read32(bdf(5, 3, 0), 0x100).unwrap(), u32::MAX);
    assert_eq!(find(&table, bdf(5, 3, 0)).cfg_size, 256);
    assert_eq!(find(&table, bdf(3, 0, 0)).cfg_size, 4096);
    // Below a PCIe downstream port only device 0 exists: 03:01.0 is never asked for.
    assert_eq!(tree.t.read32(bdf(3, 1, 0), 0).unwrap(), u32::MAX);
}

#[test]
fn enumeration_is_repeatable_over_stale_bus_numbers() {
    let mut tree = three_deep();
    let mut first = FunctionTable::new();
    enumerate::enumerate(tree.t.as_mut(), 0, &mut first).unwrap();
    // A restarted PD finds the bus numbers it left and must end with the same picture.
    let mut again = FunctionTable::new();
    enumerate::enumerate(tree.t.as_mut(), 0, &mut again).unwrap();
    let ids = |t: &FunctionTable| {
        t.iter()
            .map(|f| (f.bdf, f.bridge.map(|b| (b.secondary, b.subordinate))))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&again));
}

#[test]
fn ari_functions_are_followed_when_the_port_forwards_them() {
    for port_ari in [true, false] {
        let mut t: Box<Topology<8>> = Box::default();
        let mut rp = EmuFunction::bridge(0x1b36, 0x000c);
        rp.pcie(PcieType::RootPort, port_ari).unwrap();
        let rp = t.add(Slot::At(bdf(0, 1, 0)), rp).unwrap();
        for (func, next) in [(0u8, 9u8), (9, 0x20), (0x20, 0)] {
            let mut f = EmuFunction::endpoint(0x15b3, 0x101e, 0x02_00_00);
            f.pcie(PcieType::Endpoint, false)
                .unwrap()
                .ari(next)
                .unwrap();
            f.bar(
                0,
                EmuBar::Mem64 {
                    size: MIB,
                    prefetchable: true,
                },
            )
            .unwrap();
            t.add(
                Slot::Below {
                    bridge: rp,
                    devfn: func,
                },
                f,
            )
            .unwrap();
        }
        let mut table = FunctionTable::new();
        enumerate::enumerate(t.as_mut(), 0, &mut table).unwrap();
        let found: Vec<Bdf> = table.iter().skip(1).map(|f| f.bdf).collect();
        if port_ari {
            assert_eq!(
                found,
                [
                    Bdf::from_ari(1, 0),
                    Bdf::from_ari(1, 9),
                    Bdf::from_ari(1, 0x20)
                ]
            );
            assert_eq!(Bdf::from_ari(1, 9).to_string(), "01:01.1");
            let devctl2 = t.read16(bdf(0, 1, 0), 0x40 + regs::EXP_DEVCTL2).unwrap();
            assert_ne!(devctl2 & regs::EXP_DEVCTL2_ARI, 0);
        } else {
            // No ARI forwarding: only device 0 answers, and it is not multi-function.
            assert_eq!(found, [Bdf::from_ari(1, 0)]);
        }
    }
}

/// A chain of conventional bridges `depth` long below the root, an endpoint at the bottom.
fn chain(root: u8, depth: usize) -> Box<Topology<24>> {
    let mut t: Box<Topology<24>> = Box::default();
    let mut up = t
        .add(
            Slot::At(bdf(root, 1, 0)),
            EmuFunction::bridge(0x8086, 0x244e),
        )
        .unwrap();
    for _ in 1..depth {
        up = t
            .add(
                Slot::Below {
                    bridge: up,
                    devfn: 0,
                },
                EmuFunction::bridge(0x8086, 0x244e),
            )
            .unwrap();
    }
    let mut ep = EmuFunction::endpoint(0x1af4, 0x1000, 0x02_00_00);
    ep.bar(
        0,
        EmuBar::Mem32 {
            size: 4096,
            prefetchable: false,
        },
    )
    .unwrap();
    t.add(
        Slot::Below {
            bridge: up,
            devfn: 0,
        },
        ep,
    )
    .unwrap();
    t
}

#[test]
fn depth_and_bus_numbers_are_bounded_with_typed_outcomes() {
    capture_logs();
    let mut t = chain(0, MAX_DEPTH + 1);
    let mut table = FunctionTable::new();
    enumerate::enumerate(t.as_mut(), 0, &mut table).unwrap();
    let states: Vec<State> = table.iter().map(|f| f.state).collect();
    assert_eq!(states.iter().filter(|s| **s == State::TooDeep).count(), 1);
    assert_eq!(table.len(), MAX_DEPTH);
    assert!(logs().iter().any(|l| l.contains("deeper than 16 levels")));

    // Root bus 251: buses 252..=255 are all there is.
    let mut t = chain(251, 6);
    let stats = enumerate::enumerate(t.as_mut(), 251, &mut table).unwrap();
    assert_eq!(stats.last_bus, 255);
    assert_eq!(
        table
            .iter()
            .filter(|f| f.state == State::NoBusNumber)
            .count(),
        1
    );
    assert_eq!(table[3].bridge.unwrap().subordinate, 255);
    assert!(logs().iter().any(|l| l.contains("bus numbers exhausted")));
}

#[test]
fn a_full_table_is_a_typed_error_and_leaves_bus_ranges_consistent() {
    // Run on a thread with room for a 70-function topology.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut t: Box<Topology<80>> = Box::default();
            let mut rp = EmuFunction::bridge(0x1b36, 0x000c);
            rp.pcie(PcieType::Upstream, false).unwrap();
            let rp = t.add(Slot::At(bdf(0, 1, 0)), rp).unwrap();
            for dev in 0..9u8 {
                for func in 0..8u8 {
                    let mut f = EmuFunction::endpoint(0x8086, 0x1000, 0x02_00_00);
                    if func == 0 {
                        f.multi_function();
                    }
                    t.add(
                        Slot::Below {
                            bridge: rp,
                            devfn: dev << 3 | func,
                        },
                        f,
                    )
                    .unwrap();
                }
            }
            let mut table = FunctionTable::new();
            let err = enumerate::enumerate(t.as_mut(), 0, &mut table).unwrap_err();
            assert_eq!(err, EnumError::TableFull { at: bdf(1, 7, 7) });
            assert_eq!(table.len(), 64);
            // The open bridge was closed: subordinate is the last bus, not the 0xff of the scan.
            assert_eq!(t.read8(bdf(0, 1, 0), regs::SUBORDINATE_BUS).unwrap(), 1);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn sizing_restores_every_register_on_every_error_path() {
    let mut t: Box<Topology<1>> = Box::default();
    let mut f = gpu_function();
    f.rom(512 << 10).unwrap();
    let at = bdf(0, 0, 0);
    t.add(Slot::At(at), f).unwrap();
    // Firmware-like starting point: addresses programmed, decoding on.
    for (reg, v) in [
        (0x10, 0xfb00_0000u32),
        (0x14, 0xd000_000c),
        (0x18, 0x1),
        (0x24, 0xf001),
        (4, 0x0007),
    ] {
        t.write32(at, reg, v).unwrap();
    }
    let original = t.function(0).unwrap().bytes().to_vec();
    let mut counting = Counting {
        inner: t.as_mut(),
        reads: 0,
        writes: 0,
    };
    let (bars, rom) = bar::size_bars(&mut counting, at, 0, 0x0007).unwrap();
    let total = counting.reads + counting.writes;
    assert_eq!(bars[1].unwrap().size, 256 << 20);
    assert_eq!(bars[1].unwrap().addr, 0x1_d000_0000);
    assert_eq!(rom.unwrap().size, 512 << 10);
    assert_eq!(t.function(0).unwrap().bytes(), &original[..]);

    for n in 1..=total {
        for (reads, writes) in [(true, false), (false, true)] {
            let mut flaky = Flaky {
                inner: t.as_mut(),
                fail_at: n,
                count: 0,
                reads,
                writes,
                failed_write: None,
            };
            let result = bar::size_bars(&mut flaky, at, 0, 0x0007);
            let failed_write = flaky.failed_write;
            let now = t.function(0).unwrap().bytes().to_vec();
            let changed: Vec<usize> = (0..now.len())
                .filter(|&i| now[i] != original[i])
                .map(|i| i / 4 * 4)
                .collect();
            match failed_write {
                // A failed restore write can leave that one register; nothing else may differ.
                Some(reg) if !changed.is_empty() => {
                    assert!(result.is_err());
                    assert!(
                        changed.iter().all(|&d| d == usize::from(reg)),
                        "access {n}: {changed:x?} vs {reg:#x}"
                    );
                    t.function_mut(0).unwrap().poke(0, &original).unwrap();
                }
                _ => assert!(
                    changed.is_empty(),
                    "access {n} (reads {reads}): registers {changed:x?} left changed"
                ),
            }
            if result.is_ok() {
                assert!(reads || writes);
            }
        }
    }

    // A 64-bit BAR in the last slot and a reserved memory type: typed errors, nothing changed.
    for (value, expect) in [
        (0x4u32, bar::BarError::Mem64InLastSlot { index: 5 }),
        (0x6, bar::BarError::ReservedType { index: 5 }),
    ] {
        t.function_mut(0)
            .unwrap()
            .poke(0x24, &value.to_le_bytes())
            .unwrap();
        let before = t.function(0).unwrap().bytes().to_vec();
        assert_eq!(bar::size_bars(t.as_mut(), at, 0, 0x0007), Err(expect));
        assert_eq!(t.function(0).unwrap().bytes(), &before[..]);
        let f = probe::probe(t.as_mut(), at).unwrap().unwrap();
        assert_eq!(f.state, State::BarsUnreadable(expect));
    }
}
