//! Fuzz entry points (cargo-fuzz targets in `fuzz/`, and a stable-toolchain test that feeds them
//! pseudo-random inputs). Each builds an emulated topology out of the input bytes and runs the
//! whole server over it: enumeration, assignment, the table, and a few client requests. The
//! property is that nothing panics and everything terminates.

use crate::assign::{Window, Windows};
use crate::emul::{BarSizes, EmuBar, EmuFunction, PcieType, Slot, Topology, CFG_SIZE};
use crate::policy::{ClientEntry, DeviceMatch, PolicyRule};
use crate::server::{Config, PciServer};
use core::fmt;
use pci_api::{Bdf, Request, Width};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};

/// Functions in a fuzzed topology.
const NODES: usize = 10;

/// Input bytes consumed one at a time; zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
}

/// A kernel with message registers and nothing else (PPCs and notifications fail): drives the
/// server's `init` and `protected` without a platform, here, in the benchmark and in tests.
#[derive(Debug, Default)]
pub struct NullKernel(pub MessageRegisters);

impl Kernel for NullKernel {
    fn pd_name(&self) -> &str {
        "pci"
    }
    fn notify(&mut self, _ch: Channel) -> Result<(), IpcError> {
        Err(IpcError::Unsupported)
    }
    fn ppcall(&mut self, _ch: Channel, _msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        Err(IpcError::UndeclaredChannel)
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.0
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

/// Discards table output (the formatter must not panic on any function).
struct Sink;

impl fmt::Write for Sink {
    fn write_str(&mut self, _s: &str) -> fmt::Result {
        Ok(())
    }
}

const CLIENT: Channel = Channel::new(2);
const CLIENTS: &[ClientEntry<'static>] = &[ClientEntry {
    channel: CLIENT,
    name: "fuzz",
}];
const POLICY: &[PolicyRule] = &[PolicyRule {
    client: CLIENT,
    device: DeviceMatch::Class {
        class: 0x03,
        subclass: None,
    },
}];

/// Run the server over `topology` and poke it with requests derived from `input`.
fn exercise<const N: usize>(topology: Topology<N>, input: &mut Bytes<'_>) {
    let window = |base: u64, size: u64| Some(Window { base, size });
    let windows = Windows {
        mem: window(0x1000_0000, 1 << (20 + (input.u8() % 10))),
        pref: if input.u8() & 1 != 0 {
            window(0x40_0000_0000, 1 << 32)
        } else {
            None
        },
        io: window(0x1000, 0x4000),
    };
    let config = Config {
        clients: CLIENTS,
        policy: POLICY,
        windows,
        root_bus: 0,
    };
    let mut server = PciServer::new(topology, config);
    let mut k = NullKernel(MessageRegisters::default());
    let _ = server.init(&mut k);
    let _ = crate::table::write_table(&mut Sink, server.functions(), &windows);
    for _ in 0..8 {
        let bdf = Bdf::from_routing_id(input.u16());
        let bdf = server
            .functions()
            .get(usize::from(input.u8()) % 8)
            .map_or(bdf, |f| f.bdf);
        let req = match input.u8() % 6 {
            0 => Request::List {
                index: u16::from(input.u8()),
            },
            1 => Request::Claim { bdf },
            2 => Request::ReadConfig {
                bdf,
                offset: input.u16() & 0xffc,
                width: Width::U32,
            },
            3 => Request::WriteConfig {
                bdf,
                offset: u16::from(input.u8()),
                width: Width::U16,
                value: u32::from(input.u16()),
            },
            4 => Request::Bar {
                bdf,
                index: input.u8() % 6,
            },
            _ => Request::Release { bdf },
        };
        let info = req.encode(k.mrs());
        let _ = server.protected(&mut k, CLIENT, info);
    }
    server.release_client(&mut k, CLIENT);
}

/// One function with a random 4 KiB configuration space (and random BAR sizes), placed on the
/// root bus and behind a root port, through the whole server.
pub fn config_space(data: &[u8]) {
    let mut input = Bytes(data);
    let mut bytes = [0u8; CFG_SIZE];
    for b in bytes.iter_mut() {
        *b = input.u8();
    }
    // Keep the function present most of the time, so the fuzzer reaches the interesting parts.
    if let Some(vendor) = bytes.first_mut().filter(|v| **v == 0xff || **v == 0) {
        *vendor = 0xde;
    }
    let mut sizes = BarSizes::default();
    for s in sizes.bars.iter_mut() {
        let v = input.u8();
        *s = (v & 0x80 != 0).then(|| 1u64 << (v % 40));
    }
    let Ok(f) = EmuFunction::from_dump(&bytes, &BarSizes::default()) else {
        return;
    };
    let f = EmuFunction::from_dump(f.bytes(), &sizes).unwrap_or(f);
    let mut t: Topology<3> = Topology::new();
    let _ = t.add(Slot::At(Bdf::from_routing_id(0)), f.clone());
    let mut port = EmuFunction::bridge(0x1b36, 0x000c);
    if port.pcie(PcieType::RootPort, true).is_ok() {
        if let Ok(p) = t.add(Slot::At(Bdf::from_routing_id(8)), port) {
            let _ = t.add(
                Slot::Below {
                    bridge: p,
                    devfn: 0,
                },
                f,
            );
        }
    }
    exercise(t, &mut input);
}

/// A random topology: up to ten functions (host bridges, bridges and ports, endpoints, with random
/// BARs and capabilities, some bytes overwritten at random), through the whole server.
pub fn topology(data: &[u8]) {
    let mut input = Bytes(data);
    let mut t: Topology<NODES> = Topology::new();
    let nodes = 1 + usize::from(input.u8()) % NODES;
    for _ in 0..nodes {
        let kind = input.u8();
        let (vendor, device) = (0x1000 | (input.u16() & 0x0fff), input.u16());
        let mut f = match kind % 4 {
            0 => EmuFunction::endpoint(vendor, device, 0x03_00_00),
            1 => EmuFunction::endpoint(vendor, device, u32::from(input.u16()) << 8),
            2 => EmuFunction::bridge(vendor, device),
            _ => EmuFunction::host_bridge(vendor, device),
        };
        if kind & 0x10 != 0 {
            let port = match input.u8() % 4 {
                0 => PcieType::Endpoint,
                1 => PcieType::RootPort,
                2 => PcieType::Upstream,
                _ => PcieType::Downstream,
            };
            let _ = f.pcie(port, input.u8() & 1 != 0);
        }
        for i in 0..6 {
            let b = input.u8();
            let size = 1u64 << (4 + b % 36);
            let bar = match b >> 6 {
                0 => continue,
                1 => EmuBar::Io {
                    size: u32::try_from(size.min(256)).unwrap_or(256),
                },
                2 => EmuBar::Mem32 {
                    size: u32::try_from(size.min(1 << 30)).unwrap_or(16),
                    prefetchable: b & 1 != 0,
                },
                _ => EmuBar::Mem64 {
                    size,
                    prefetchable: b & 1 != 0,
                },
            };
            let _ = f.bar(i, bar);
        }
        if kind & 0x20 != 0 {
            let _ = f.msix(
                1 + input.u16() % 64,
                (input.u8() % 6, u32::from(input.u16()) << 3),
                (input.u8() % 6, 0x800),
            );
        }
        if kind & 0x40 != 0 {
            let _ = f.msi(input.u8() % 6);
        }
        if kind & 0x80 != 0 {
            let _ = f.ari(input.u8());
            let _ = f.multi_function();
        }
        for _ in 0..input.u8() % 4 {
            let at = input.u16() % 4096;
            let _ = f.poke(at, &[input.u8()]);
        }
        // Mostly function 0 of device 0, where scans look first; sometimes anywhere.
        let b = input.u8();
        let func = if b & 3 != 0 { 0 } else { input.u8() % 8 };
        let dev = if b & 4 != 0 { 0 } else { input.u8() % 32 };
        let devfn = dev << 3 | func;
        let parent = usize::from(input.u8()) % (t.len() + 1);
        let slot = if parent == t.len() {
            Slot::At(Bdf::from_routing_id(u16::from(devfn)))
        } else {
            Slot::Below {
                bridge: parent,
                devfn,
            }
        };
        let _ = t.add(slot, f);
    }
    exercise(t, &mut input);
}
