//! Capability lists, well formed and not: walks end, report what went wrong, keep what they found.
mod common;

use common::bdf;
use pci_server::caps::{self, CapError, CapList, ExtCapList, Walked};
use pci_server::emul::{EmuBar, EmuFunction, PcieType, Slot, Topology};
use pci_server::probe::{self, Function};
use pci_server::regs::{cap, ext};
use pci_server::ConfigSpace;

/// Probe a single function at 00:00.0.
fn probe_one(f: EmuFunction) -> Function {
    let mut t: Box<Topology<1>> = Box::default();
    t.add(Slot::At(bdf(0, 0, 0)), f).unwrap();
    probe::probe(t.as_mut(), bdf(0, 0, 0)).unwrap().unwrap()
}

fn ids(list: &[caps::Cap]) -> Vec<(u16, u16)> {
    list.iter().map(|c| (c.id, c.offset)).collect()
}

/// A PCIe endpoint with PM@40, MSI@48, PCIe@58, MSI-X@94 (builder order), AER@100, ARI@148.
fn well_formed() -> EmuFunction {
    let mut f = EmuFunction::endpoint(0x10de, 0x2230, 0x03_00_00);
    f.bar(
        0,
        EmuBar::Mem32 {
            size: 1 << 24,
            prefetchable: false,
        },
    )
    .unwrap()
    .pm()
    .unwrap()
    .msi(3)
    .unwrap()
    .pcie(PcieType::Endpoint, false)
    .unwrap()
    .msix(64, (0, 0x1000), (0, 0x2000))
    .unwrap()
    .ext_cap(ext::AER, 0x48)
    .unwrap()
    .ari(0)
    .unwrap();
    f
}

#[test]
fn well_formed_lists_decode_in_order() {
    let f = probe_one(well_formed());
    assert_eq!(
        ids(&f.caps),
        [
            (cap::PM, 0x40),
            (cap::MSI, 0x48),
            (cap::EXP, 0x58),
            (cap::MSIX, 0x94)
        ]
    );
    assert_eq!(ids(&f.ext_caps), [(ext::AER, 0x100), (ext::ARI, 0x148)]);
    assert_eq!(
        (f.caps_walk, f.ext_walk),
        (Walked::default(), Walked::default())
    );
    let msi = f.msi.unwrap();
    assert_eq!((msi.vectors, msi.is64, msi.enabled), (8, true, false));
    let m = f.msix.unwrap();
    assert_eq!(
        (
            m.entries,
            m.table.bir,
            m.table.offset,
            m.pba.bir,
            m.pba.offset
        ),
        (64, 0, 0x1000, 0, 0x2000)
    );
    assert_eq!((m.table_bytes(), m.pba_bytes()), (1024, 8));
    assert!(f.msix_fits);
    assert_eq!(f.pcie.unwrap().port_type, 0);
    assert!(f.ari.is_some());
}

#[test]
fn msix_tables_outside_their_bar_are_flagged() {
    let mut f = EmuFunction::endpoint(0x1af4, 0x1000, 0x02_00_00);
    f.bar(
        0,
        EmuBar::Mem32 {
            size: 4096,
            prefetchable: false,
        },
    )
    .unwrap()
    .msix(512, (0, 0), (2, 0))
    .unwrap();
    let f = probe_one(f);
    // 512 entries need 8 KiB in a 4 KiB BAR, and BAR2 does not exist.
    assert!(f.msix.is_some() && !f.msix_fits);
}

/// Probe a well-formed function after overwriting `bytes` at `at`.
fn probe_poked(pokes: &[(u16, &[u8])]) -> Function {
    let mut f = well_formed();
    for (at, bytes) in pokes {
        f.poke(*at, bytes).unwrap();
    }
    probe_one(f)
}

#[test]
fn legacy_cycles_header_pointers_and_truncation_are_reported_and_skipped() {
    // MSI@48 points back to PM@40.
    let f = probe_poked(&[(0x49, &[0x40])]);
    assert_eq!(ids(&f.caps), [(cap::PM, 0x40), (cap::MSI, 0x48)]);
    assert_eq!(f.caps_walk.error, Some(CapError::Cycle { at: 0x40 }));
    // A self loop.
    let f = probe_poked(&[(0x41, &[0x40])]);
    assert_eq!(f.caps_walk.error, Some(CapError::Cycle { at: 0x40 }));
    // PM@40 points into the header.
    let f = probe_poked(&[(0x41, &[0x20])]);
    assert_eq!(ids(&f.caps), [(cap::PM, 0x40)]);
    assert_eq!(
        f.caps_walk.error,
        Some(CapError::IntoHeader {
            at: 0x40,
            pointer: 0x20
        })
    );
    // The list head itself points into the header.
    let f = probe_poked(&[(0x34, &[0x08])]);
    assert!(f.caps.is_empty());
    assert_eq!(
        f.caps_walk.error,
        Some(CapError::IntoHeader {
            at: 0x34,
            pointer: 0x08
        })
    );
    // Reserved low pointer bits are ignored, as the spec says.
    let f = probe_poked(&[(0x41, &[0x4b])]);
    assert_eq!(ids(&f.caps)[1], (cap::MSI, 0x48));
    assert_eq!(f.caps_walk.error, None);
    // An MSI-X structure that would run past 0xff is not decoded.
    let f = probe_poked(&[(0x59, &[0xf8]), (0xf8, &[0x11, 0x00, 0x3f, 0x00])]);
    assert_eq!(ids(&f.caps).last(), Some(&(cap::MSIX, 0xf8)));
    assert_eq!(f.caps_walk.error, Some(CapError::Truncated { at: 0xf8 }));
    assert!(f.msix.is_none());
}

#[test]
fn a_list_running_into_absent_space_is_truncated() {
    // A 64-byte dump: the capability pointer leads where nothing is implemented (reads all ones).
    let bytes: Vec<u8> = well_formed().bytes()[..64].to_vec();
    let f = EmuFunction::from_dump(&bytes, &Default::default()).unwrap();
    let f = probe_one(f);
    assert!(f.caps.is_empty());
    assert_eq!(f.caps_walk.error, Some(CapError::Truncated { at: 0x40 }));
}

#[test]
fn null_entries_are_counted_and_walked_past() {
    // MSI@48 becomes id 0 but still links on to the PCIe capability.
    let f = probe_poked(&[(0x48, &[0x00])]);
    assert_eq!(
        ids(&f.caps),
        [(cap::PM, 0x40), (cap::EXP, 0x58), (cap::MSIX, 0x94)]
    );
    assert_eq!(
        f.caps_walk,
        Walked {
            nulls: 1,
            error: None
        }
    );
    // The same in extended space: AER@100 with id 0.
    let f = probe_poked(&[(0x100, &[0x00, 0x00])]);
    assert_eq!(ids(&f.ext_caps), [(ext::ARI, 0x148)]);
    assert_eq!(f.ext_walk.nulls, 1);
}

#[test]
fn extended_cycles_header_pointers_and_dangling_links_are_reported() {
    let header =
        |id: u16, next: u16| (u32::from(id) | 1 << 16 | u32::from(next) << 20).to_le_bytes();
    // ARI@148 points back to AER@100.
    let f = probe_poked(&[(0x148, &header(ext::ARI, 0x100))]);
    assert_eq!(ids(&f.ext_caps), [(ext::AER, 0x100), (ext::ARI, 0x148)]);
    assert_eq!(f.ext_walk.error, Some(CapError::Cycle { at: 0x100 }));
    // AER@100 points into the legacy space.
    let f = probe_poked(&[(0x100, &header(ext::AER, 0x0c0))]);
    assert_eq!(
        f.ext_walk.error,
        Some(CapError::IntoHeader {
            at: 0x100,
            pointer: 0xc0
        })
    );
    // AER@100 points at nothing.
    let f = probe_poked(&[(0x100, &header(ext::AER, 0x800))]);
    assert_eq!(f.ext_walk.error, Some(CapError::Truncated { at: 0x800 }));
    assert_eq!(ids(&f.ext_caps), [(ext::AER, 0x100)]);
}

#[test]
fn walks_are_bounded_on_adversarial_lists() {
    // Every dword of the legacy space is a capability linking to the next one, the last one back
    // to the first: 48 entries, then the cycle.
    let mut f = well_formed();
    for at in (0x40u16..0x100).step_by(4) {
        let next = if at == 0xfc { 0x40 } else { at + 4 };
        f.poke(at, &[cap::VNDR as u8, next as u8]).unwrap();
    }
    // Extended space: 960 one-dword entries, each pointing to the next.
    for at in (0x100u16..0x1000).step_by(4) {
        let next = if at == 0xffc { 0x100 } else { at + 4 };
        f.poke(at, &(0x000b_u32 | u32::from(next) << 20).to_le_bytes())
            .unwrap();
    }
    let mut t: Box<Topology<1>> = Box::default();
    t.add(Slot::At(bdf(0, 0, 0)), f).unwrap();
    let mut legacy = CapList::new();
    let w = caps::walk_legacy(t.as_mut(), bdf(0, 0, 0), 0x40, &mut legacy);
    assert_eq!(
        (legacy.len(), w.error),
        (48, Some(CapError::Cycle { at: 0x40 }))
    );
    let mut extended = ExtCapList::new();
    let first = t.read32(bdf(0, 0, 0), 0x100).unwrap();
    let w = caps::walk_extended(t.as_mut(), bdf(0, 0, 0), first, &mut extended);
    assert_eq!(extended.len(), caps::MAX_EXT_CAPS);
    assert_eq!(
        w.error,
        Some(CapError::TooMany {
            at: 0x100 + 4 * caps::MAX_EXT_CAPS as u16
        })
    );
}
