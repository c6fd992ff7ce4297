//! `cargo xtask bench pci`: configuration accesses and time of a full bring-up scan (enumerate
//! every bus reachable from the host bridge, number buses, size and place every BAR, program
//! bridge windows) of a synthetic topology with 32 devices, against the minimum number of
//! accesses that topology requires.
//!
//! The minimum is computed from the topology's description, not from the server: any correct
//! bring-up must
//! - read the vendor id of every slot that could hold a function: 32 devices on a conventional
//!   bus, device 0 below a PCIe root or downstream port, functions 1..7 of multi-function devices;
//! - read class and header type of each function (2 dwords);
//! - per bridge: learn whether it is a PCIe port (capability pointer + capability header), open
//!   and close its bus range (2 writes), program its memory and prefetchable windows (2 writes)
//!   and enable it (1 write);
//! - per BAR slot: read the original value (sizing must be able to put it back: the BAR is
//!   restored if the device is refused or anything fails), write all ones and read back (3
//!   accesses; 6 for a 64-bit pair), and write the address (1; 2 for a 64-bit pair) where one is
//!   implemented;
//! - per endpoint with BARs: enable decoding (1 write).
//!
//! Time is compared with doing the minimum number of raw accesses on the same emulated bus, to the
//! same mix of addresses the scan used, in the same run, interleaved (benchkit). A naive probe of
//! every device slot of all 256 buses is printed for scale.
use benchkit::{compare, fmt_ns, report, Goal, Op};
use pci_api::{Bdf, Width};
use pci_server::emul::{EmuBar, EmuFunction, PcieType, Slot, Topology};
use pci_server::fuzz::NullKernel;
use pci_server::{ClientEntry, Config, ConfigError, ConfigSpace, PciServer, Window, Windows};

const NODES: usize = 48;
type Bus = Topology<NODES>;

/// Counts accesses on their way to the emulated bus, remembering which functions they reached.
struct Counting {
    bus: Box<Bus>,
    accesses: u64,
    trace: Option<Vec<Bdf>>,
}

impl Counting {
    fn count(&mut self, bdf: Bdf) {
        self.accesses += 1;
        if let Some(t) = self.trace.as_mut() {
            t.push(bdf);
        }
    }
}

impl ConfigSpace for Counting {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        self.count(bdf);
        self.bus.read(bdf, offset, width)
    }
    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        self.count(bdf);
        self.bus.write(bdf, offset, width, value)
    }
}

/// The minimum, tallied while the topology is built.
#[derive(Default, Debug)]
struct Minimum {
    probes: u64,
    functions: u64,
    bridges: u64,
    bar_slots: u64,
    bar_dwords: u64,
    endpoints: u64,
    devices: u64,
}

impl Minimum {
    fn total(&self) -> u64 {
        self.probes
            + 2 * self.functions
            + 7 * self.bridges
            + 3 * self.bar_slots
            + self.bar_dwords
            + self.endpoints
    }
}

struct Builder {
    t: Box<Bus>,
    min: Minimum,
}

impl Builder {
    /// A bus behind `parent` (or the root bus): `link` buses have only device 0.
    fn bus(&mut self, link: bool) {
        self.min.probes += if link { 1 } else { 32 };
    }

    fn add(&mut self, slot: Slot, f: EmuFunction) -> usize {
        self.min.functions += 1;
        self.t.add(slot, f).unwrap()
    }

    fn bridge(&mut self, slot: Slot, kind: Option<PcieType>) -> usize {
        let mut f = EmuFunction::bridge(0x10b5, 0x8747);
        if let Some(k) = kind {
            f.pcie(k, false).unwrap();
        }
        self.min.bridges += 1;
        self.min.bar_slots += 2;
        let i = self.add(slot, f);
        // Root and downstream ports lead to a link, other bridges to a conventional bus.
        self.bus(matches!(
            kind,
            Some(PcieType::RootPort | PcieType::Downstream)
        ));
        i
    }

    /// An endpoint: a 32-bit register BAR, a 64-bit prefetchable BAR, MSI-X; `funcs` functions.
    fn device(&mut self, parent: Option<usize>, dev: u8, funcs: u8) {
        self.min.devices += u64::from(funcs);
        if funcs > 1 {
            self.min.probes += 7;
        }
        for func in 0..funcs {
            let mut f = EmuFunction::endpoint(0x10de, 0x2204 + u16::from(func), 0x03_00_00);
            f.bar(
                0,
                EmuBar::Mem32 {
                    size: 1 << 20,
                    prefetchable: false,
                },
            )
            .unwrap()
            .bar(
                2,
                EmuBar::Mem64 {
                    size: 4 << 20,
                    prefetchable: true,
                },
            )
            .unwrap()
            .pcie(PcieType::Endpoint, false)
            .unwrap()
            .msix(16, (0, 0x8000), (0, 0x9000))
            .unwrap();
            if func == 0 && funcs > 1 {
                f.multi_function();
            }
            // Six BAR slots, one of them covered by the 64-bit pair: 5 sizings; 3 address dwords.
            self.min.bar_slots += 5 + 1;
            self.min.bar_dwords += 3;
            self.min.endpoints += 1;
            let devfn = dev << 3 | func;
            let slot = match parent {
                Some(bridge) => Slot::Below { bridge, devfn },
                None => Slot::At(Bdf::from_routing_id(u16::from(devfn))),
            };
            self.add(slot, f);
        }
    }
}

/// 32 devices: four on the root bus; root port 1 -> switch -> 4 two-function devices; root port
/// 2 -> switch -> 3 devices and a PCI bridge with 13; root ports 3 and 4 -> a two-function GPU.
fn topology() -> (Box<Bus>, Minimum) {
    let mut b = Builder {
        t: Box::default(),
        min: Minimum::default(),
    };
    b.bus(false);
    b.add(
        Slot::At(Bdf::from_routing_id(0)),
        EmuFunction::host_bridge(0x8086, 0x29c0),
    );
    let ports: Vec<usize> = (1..=4u8)
        .map(|d| {
            b.bridge(
                Slot::At(Bdf::from_routing_id(u16::from(d) << 3)),
                Some(PcieType::RootPort),
            )
        })
        .collect();
    for dev in 0x10..0x14 {
        b.device(None, dev, 1);
    }
    for (n, &rp) in ports.iter().take(2).enumerate() {
        let up = b.bridge(
            Slot::Below {
                bridge: rp,
                devfn: 0,
            },
            Some(PcieType::Upstream),
        );
        for d in 0..4u8 {
            let down = b.bridge(
                Slot::Below {
                    bridge: up,
                    devfn: d << 3,
                },
                Some(PcieType::Downstream),
            );
            match (n, d) {
                (0, _) => b.device(Some(down), 0, 2),
                (_, 3) => {
                    let pci = b.bridge(
                        Slot::Below {
                            bridge: down,
                            devfn: 0,
                        },
                        None,
                    );
                    for dev in 0..13 {
                        b.device(Some(pci), dev, 1);
                    }
                }
                _ => b.device(Some(down), 0, 1),
            }
        }
    }
    for &rp in &ports[2..] {
        b.device(Some(rp), 0, 2);
    }
    (b.t, b.min)
}

fn windows() -> Windows {
    Windows {
        mem: Some(Window {
            base: 0x1000_0000,
            size: 0x1000_0000,
        }),
        pref: Some(Window {
            base: 0x40_0000_0000,
            size: 1 << 32,
        }),
        io: None,
    }
}

const CLIENTS: &[ClientEntry<'static>] = &[];

/// Run the server's bring-up on `bus`; returns the backend (with its counts) and functions found.
fn bring_up(bus: Box<Bus>, trace: bool) -> (Counting, usize) {
    let config = Config {
        clients: CLIENTS,
        policy: &[],
        windows: windows(),
        root_bus: 0,
    };
    let port = Counting {
        bus,
        accesses: 0,
        trace: trace.then(Vec::new),
    };
    let mut server = PciServer::new(port, config);
    server.init(&mut NullKernel::default()).unwrap();
    let found = server.functions().len();
    (server.into_port(), found)
}

fn main() {
    let (bus, min) = topology();
    assert_eq!(min.devices, 32);
    let pristine = bus.clone();
    let (counted, found) = bring_up(bus, true);
    let accesses = counted.accesses;
    assert_eq!(found as u64, min.functions, "every function found");
    let minimum = min.total();
    let naive = 256 * 32;
    println!(
        "pci: synthetic topology: {} devices, {} functions, {} bridges",
        min.devices, min.functions, min.bridges
    );
    println!(
        "pci: full scan + assignment: {accesses} config accesses; minimum {minimum} ({min:?})"
    );
    println!("pci: a naive probe of every device slot of all 256 buses alone takes {naive} reads");

    // Time: the whole bring-up vs the minimum number of raw accesses, on the same emulated bus.
    let mut fresh: Vec<Box<Bus>> = (0..48).map(|_| pristine.clone()).collect();
    // The baseline reads the addresses the scan used (sampled evenly), `minimum` times, on the
    // bus as the scan left it (numbered, so every address routes as it did during the scan).
    let trace = counted.trace.unwrap_or_default();
    let mix: Vec<Bdf> = (0..minimum)
        .map(|i| trace[(i * trace.len() as u64 / minimum) as usize])
        .collect();
    let mut numbered = counted.bus;
    let c = compare(
        41,
        1,
        || {
            let bus = fresh.pop().unwrap_or_else(|| pristine.clone());
            let (port, _) = bring_up(bus, false);
            fresh.insert(0, port.bus);
        },
        || {
            for &bdf in &mix {
                std::hint::black_box(numbered.read(bdf, 0, Width::U32).unwrap());
            }
        },
    );
    println!(
        "pci: bring-up {} vs {minimum} raw accesses {}",
        fmt_ns(c.subject),
        fmt_ns(c.baseline)
    );
    report(&[
        Goal::new(
            "pci-accesses",
            accesses as f64 / minimum as f64,
            Op::AtMost,
            2.0,
        ),
        Goal::new("pci-time", c.cost_ratio(), Op::AtMost, 3.0),
    ]);
}
