//! The server end to end in hosted mode: configuration space over PPC to the device model (the
//! GSP model's emulated GPU topology), clients over PPC through the `pci-api` stub.
mod common;

use common::{bdf, capture_logs, logs, ToModel};
use pci_api::{BarKind, Bdf, DeviceFlags, PciClient, PciError, Width};
use pci_server::emul::presets::{self, GpuSpec, GPU_TOPOLOGY_FUNCTIONS};
use pci_server::{
    regs, ClientEntry, Config, DeviceMatch, ModelPort, PciServer, PolicyRule, Trace, Window,
    Windows,
};
use pd_core::trace::TraceEvent;
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};

type Model = ToModel<GPU_TOPOLOGY_FUNCTIONS>;
type Server = PciServer<'static, ModelPort>;

/// `pci`'s channel ends: 1 to the model, 2 from gsp, 3 from gpu (as in system.xml).
const MODEL: Channel = Channel::new(1);
const GSP: Channel = Channel::new(2);
const GPU: Channel = Channel::new(3);
const STRANGER: Channel = Channel::new(9);

const CLIENTS: &[ClientEntry<'static>] = &[
    ClientEntry {
        channel: GSP,
        name: "gsp",
    },
    ClientEntry {
        channel: GPU,
        name: "gpu",
    },
];
const POLICY: &[PolicyRule] = &[
    PolicyRule {
        client: GSP,
        device: DeviceMatch::Id {
            vendor: 0x10de,
            device: Some(0x2204),
        },
    },
    PolicyRule {
        client: GPU,
        device: DeviceMatch::Class {
            class: 0x04,
            subclass: Some(0x03),
        },
    },
    PolicyRule {
        client: GPU,
        device: DeviceMatch::Id {
            vendor: 0x10de,
            device: None,
        },
    },
];
const WINDOW: Window = Window {
    base: 0x1000_0000,
    size: 0x1000_0000,
};

const GPU_FN: Bdf = match Bdf::new(1, 0, 0) {
    Some(b) => b,
    None => Bdf::from_routing_id(0),
};
const HDA_FN: Bdf = match Bdf::new(1, 0, 1) {
    Some(b) => b,
    None => Bdf::from_routing_id(0),
};

fn spec() -> GpuSpec {
    GpuSpec {
        device: 0x2204,
        subsystem: (0x1462, 0x3881),
        bar0: 16 << 20,
        bar1: 64 << 20,
        bar3: 32 << 20,
        audio: Some(0x1aef),
    }
}

/// The model and the server, initialised.
fn system() -> (Box<Model>, Box<Server>) {
    let model = presets::nvidia_gpu(&spec()).unwrap();
    let mut pci = Box::new(ToModel {
        mrs: MessageRegisters::default(),
        model_ch: MODEL,
        model,
        calls: 0,
    });
    let config = Config {
        clients: CLIENTS,
        policy: POLICY,
        windows: Windows {
            mem: Some(WINDOW),
            pref: None,
            io: None,
        },
        root_bus: 0,
    };
    let mut server = Box::new(PciServer::new(ModelPort::new(MODEL), config));
    server.init(pci.as_mut()).unwrap();
    (pci, server)
}

/// A client PD's kernel: its PPCs arrive at the server's `protected` on `server_ch`.
struct ClientK<'a> {
    mrs: MessageRegisters,
    server: &'a mut Server,
    pci: &'a mut Model,
    server_ch: Channel,
}

impl Kernel for ClientK<'_> {
    fn pd_name(&self) -> &str {
        "client"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn ppcall(&mut self, _ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        self.pci.mrs.copy_prefix(&self.mrs, msg.count());
        let reply = self.server.protected(self.pci, self.server_ch, msg);
        self.mrs.copy_prefix(&self.pci.mrs, reply.count());
        Ok(reply)
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

fn as_client<'a>(server: &'a mut Server, pci: &'a mut Model, server_ch: Channel) -> ClientK<'a> {
    ClientK {
        mrs: MessageRegisters::default(),
        server,
        pci,
        server_ch,
    }
}

/// The caller's end of its channel to pci (any id; the test kernel routes by `server_ch`).
const STUB: PciClient = PciClient::new(Channel::new(1));

#[test]
fn hosted_bring_up_enumerates_the_model_over_ppc_and_logs_the_table() {
    capture_logs();
    let (pci, server) = system();
    let found: Vec<String> = server
        .functions()
        .iter()
        .map(|f| f.bdf.to_string())
        .collect();
    assert_eq!(found, ["00:00.0", "00:01.0", "01:00.0", "01:00.1"]);
    assert!(
        pci.calls > 50,
        "config accesses went over PPC: {}",
        pci.calls
    );
    let lines = logs();
    assert!(lines.iter().any(|l| l == "pci: 01:00.0  10de:2204  0300  VGA compatible controller  [NVIDIA GA102 Ampere, gsp ga10x]"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("pci:          BAR1 pref64 0x001")
                && l.ends_with("64 MiB  (window +0x0)")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "pci: 4 functions on buses 0..=1"));
    assert!(lines.iter().all(|l| l.starts_with("pci: ")));
    // The model's registers now hold the assignment.
    let gpu = pci.model.function(2).unwrap();
    assert_eq!(
        u64::from(gpu.read(0x14, Width::U32) & !0xf),
        server.functions()[2].bars[1].unwrap().addr
    );
    assert_eq!(
        server.trace().count(
            Trace::Enumerated {
                functions: 0,
                last_bus: 0
            }
            .kind()
        ),
        1
    );
}

#[test]
fn listing_shows_what_each_client_may_claim() {
    let (mut pci, mut server) = system();
    let mut k = as_client(&mut server, &mut pci, GSP);
    let (first, total) = STUB.list(&mut k, 0).unwrap();
    assert_eq!((first.bdf, total), (bdf(0, 0, 0), 4));
    let port = STUB.list(&mut k, 1).unwrap().0;
    assert!(port.flags.has(DeviceFlags::BRIDGE) && !port.flags.has(DeviceFlags::ALLOWED));
    let gpu = STUB.list(&mut k, 2).unwrap().0;
    assert_eq!(
        (gpu.bdf, gpu.vendor, gpu.device, gpu.class, gpu.revision),
        (GPU_FN, 0x10de, 0x2204, 0x030000, 0xa1)
    );
    assert!(gpu.flags.has(DeviceFlags::ALLOWED));
    let hda = STUB.list(&mut k, 3).unwrap().0;
    assert!(!hda.flags.has(DeviceFlags::ALLOWED));
    assert_eq!(STUB.list(&mut k, 4), Err(PciError::NoSuchDevice));
}

#[test]
fn claims_follow_the_policy_and_are_exclusive() {
    capture_logs();
    let (mut pci, mut server) = system();
    {
        let mut gpu = as_client(&mut server, &mut pci, GPU);
        // gpu may claim NVIDIA devices and audio, but gsp gets there first below.
        assert_eq!(
            STUB.read_config(&mut gpu, GPU_FN, 0, Width::U32),
            Err(PciError::NotClaimed)
        );
    }
    let mut gsp = as_client(&mut server, &mut pci, GSP);
    assert_eq!(STUB.claim(&mut gsp, HDA_FN), Err(PciError::NotAllowed));
    assert_eq!(
        STUB.claim(&mut gsp, bdf(0, 1, 0)),
        Err(PciError::NotAllowed)
    );
    assert_eq!(
        STUB.claim(&mut gsp, bdf(7, 0, 0)),
        Err(PciError::NoSuchDevice)
    );
    assert_eq!(STUB.claim(&mut gsp, GPU_FN), Ok(()));
    assert_eq!(STUB.claim(&mut gsp, GPU_FN), Err(PciError::AlreadyClaimed));
    assert!(STUB
        .list(&mut gsp, 2)
        .unwrap()
        .0
        .flags
        .has(DeviceFlags::CLAIMED_BY_YOU));
    let mut gpu = as_client(&mut server, &mut pci, GPU);
    assert_eq!(STUB.claim(&mut gpu, GPU_FN), Err(PciError::ClaimedByOther));
    assert!(STUB
        .list(&mut gpu, 2)
        .unwrap()
        .0
        .flags
        .has(DeviceFlags::CLAIMED_BY_OTHER));
    assert_eq!(
        STUB.read_config(&mut gpu, GPU_FN, 0, Width::U32),
        Err(PciError::NotClaimed)
    );
    assert_eq!(STUB.claim(&mut gpu, HDA_FN), Ok(()));
    assert!(logs().iter().any(|l| l == "pci: 01:00.0 claimed by gsp"));
    assert!(logs()
        .iter()
        .any(|l| l == "pci: 01:00.0 claim by gpu refused: device claimed by another client"));
    assert_eq!(server.holder(GPU_FN), Some(GSP));
    assert_eq!(
        server
            .trace()
            .count(Trace::ClaimRefused { ch: 0, bdf: 0 }.kind()),
        4
    );
}

#[test]
fn a_claimed_function_is_readable_and_only_driver_registers_are_writable() {
    let (mut pci, mut server) = system();
    let mut k = as_client(&mut server, &mut pci, GSP);
    STUB.claim(&mut k, GPU_FN).unwrap();
    assert_eq!(
        STUB.read_config(&mut k, GPU_FN, 0, Width::U32),
        Ok(0x2204_10de)
    );
    assert_eq!(
        STUB.read_config(&mut k, GPU_FN, 0x100, Width::U16),
        Ok(0x0001),
        "AER header"
    );
    assert_eq!(
        STUB.read_config(&mut k, GPU_FN, 0x2, Width::U32),
        Err(PciError::BadOffset)
    );
    assert_eq!(
        STUB.read_config(&mut k, GPU_FN, 0x1000, Width::U8),
        Err(PciError::BadOffset)
    );

    // Command: memory decoding and bus mastering yes; I/O decoding no (BAR5 has no I/O window).
    let cmd = STUB
        .read_config(&mut k, GPU_FN, regs::COMMAND, Width::U16)
        .unwrap();
    assert_eq!(cmd & 7, u32::from(regs::CMD_MEMORY));
    let master = cmd | u32::from(regs::CMD_MASTER);
    assert_eq!(
        STUB.write_config(&mut k, GPU_FN, regs::COMMAND, Width::U16, master),
        Ok(())
    );
    assert_eq!(
        STUB.read_config(&mut k, GPU_FN, regs::COMMAND, Width::U16),
        Ok(master)
    );
    let io = master | u32::from(regs::CMD_IO);
    assert_eq!(
        STUB.write_config(&mut k, GPU_FN, regs::COMMAND, Width::U16, io),
        Err(PciError::RegisterNotWritable)
    );
    assert_eq!(
        STUB.write_config(&mut k, GPU_FN, regs::COMMAND, Width::U32, master),
        Err(PciError::RegisterNotWritable)
    );
    // BARs, bus numbers, anything else: no.
    for reg in [0x10u16, 0x14, 0x3c, 0x06] {
        assert_eq!(
            STUB.write_config(&mut k, GPU_FN, reg, Width::U16, 0),
            Err(PciError::RegisterNotWritable),
            "{reg:#x}"
        );
    }
    // MSI control: enable, one vector (the function is capable of one).
    let f = k.server.functions()[2].clone();
    let msi = f.msi.unwrap().cap + regs::MSI_FLAGS;
    let flags = STUB.read_config(&mut k, GPU_FN, msi, Width::U16).unwrap();
    assert_eq!(
        STUB.write_config(&mut k, GPU_FN, msi, Width::U16, flags | 1),
        Ok(())
    );
    assert_eq!(
        STUB.read_config(&mut k, GPU_FN, msi, Width::U16),
        Ok(flags | 1)
    );
    assert_eq!(
        STUB.write_config(&mut k, GPU_FN, msi, Width::U16, flags | 1 | 1 << 4),
        Err(PciError::RegisterNotWritable)
    );
    assert_eq!(
        STUB.write_config(&mut k, GPU_FN, regs::COMMAND, Width::U16, 1 << 16),
        Err(PciError::BadRequest)
    );
    assert_eq!(
        k.server
            .trace()
            .count(Trace::WriteRefused { ch: 0, offset: 0 }.kind()),
        7
    );
}

#[test]
fn bar_placements_name_the_window_offset() {
    let (mut pci, mut server) = system();
    let mut k = as_client(&mut server, &mut pci, GSP);
    assert_eq!(STUB.bar(&mut k, GPU_FN, 0), Err(PciError::NotClaimed));
    STUB.claim(&mut k, GPU_FN).unwrap();
    let bar0 = STUB.bar(&mut k, GPU_FN, 0).unwrap();
    let bar1 = STUB.bar(&mut k, GPU_FN, 1).unwrap();
    assert_eq!(
        (bar0.kind, bar0.size, bar0.prefetchable),
        (BarKind::Mem32, 16 << 20, false)
    );
    assert_eq!(
        (bar1.kind, bar1.size, bar1.prefetchable),
        (BarKind::Mem64, 64 << 20, true)
    );
    for b in [bar0, bar1] {
        assert!(b.assigned && b.phys % b.size == 0);
        assert_eq!(b.window_offset, b.phys - WINDOW.base);
        assert!(b.window_offset + b.size <= WINDOW.size);
    }
    let io = STUB.bar(&mut k, GPU_FN, 5).unwrap();
    assert!(!io.assigned && io.kind == BarKind::Io && io.window_offset == u64::MAX);
    assert_eq!(
        STUB.bar(&mut k, GPU_FN, 2),
        Err(PciError::NoSuchBar),
        "upper half of BAR1"
    );
    assert_eq!(STUB.bar(&mut k, GPU_FN, 6), Err(PciError::NoSuchBar));
}

#[test]
fn releasing_a_restarted_client_quiesces_its_devices() {
    capture_logs();
    let (mut pci, mut server) = system();
    {
        let mut k = as_client(&mut server, &mut pci, GSP);
        STUB.claim(&mut k, GPU_FN).unwrap();
        let cmd = STUB
            .read_config(&mut k, GPU_FN, regs::COMMAND, Width::U16)
            .unwrap();
        STUB.write_config(&mut k, GPU_FN, regs::COMMAND, Width::U16, cmd | 4)
            .unwrap();
    }
    assert_eq!(
        pci.model
            .function(2)
            .unwrap()
            .read(regs::COMMAND, Width::U16)
            & 4,
        4
    );
    assert_eq!(server.release_client(pci.as_mut(), GSP), 1);
    assert_eq!(server.release_client(pci.as_mut(), GSP), 0);
    let cmd = pci
        .model
        .function(2)
        .unwrap()
        .read(regs::COMMAND, Width::U16);
    assert_eq!(
        cmd & 7,
        u32::from(regs::CMD_MEMORY),
        "bus mastering off, decoding kept"
    );
    assert!(logs()
        .iter()
        .any(|l| l == "pci: gsp released 1 device(s), bus mastering off"));
    // The GPU can reset itself (FLR): it was reset, and its BARs are where they were assigned.
    assert!(logs()
        .iter()
        .any(|l| l == "pci: 01:00.0 function-level reset; BARs restored, bus mastering off"));
    let gpu = pci.model.function(2).unwrap();
    for (index, bar) in server.functions()[2].bars.iter().enumerate() {
        if let Some(b) = bar.filter(|b| b.assigned) {
            let reg = regs::BAR0 + 4 * index as u16;
            assert_eq!(
                u64::from(gpu.read(reg, Width::U32) & !0xf),
                b.addr & 0xffff_fff0
            );
        }
    }
    assert_eq!(server.holder(GPU_FN), None);
    let mut gsp = as_client(&mut server, &mut pci, GSP);
    assert_eq!(
        STUB.read_config(&mut gsp, GPU_FN, 0, Width::U32),
        Err(PciError::NotClaimed)
    );
    // A voluntary release quiesces too, and the function is free for the next client.
    STUB.claim(&mut gsp, GPU_FN).unwrap();
    STUB.release(&mut gsp, GPU_FN).unwrap();
    assert_eq!(STUB.release(&mut gsp, GPU_FN), Err(PciError::NotClaimed));
    let mut gpu = as_client(&mut server, &mut pci, GPU);
    assert_eq!(STUB.claim(&mut gpu, GPU_FN), Ok(()));
    assert_eq!(
        server
            .trace()
            .count(Trace::ClientReleased { ch: 0, claims: 0 }.kind()),
        1
    );
    // Both releases reset the GPU (it can FLR).
    assert_eq!(server.trace().count(Trace::Reset { bdf: 0 }.kind()), 2);
}

#[test]
fn strangers_and_garbage_get_typed_errors() {
    let (mut pci, mut server) = system();
    let mut k = as_client(&mut server, &mut pci, STRANGER);
    assert_eq!(STUB.list(&mut k, 0), Err(PciError::UnknownClient));
    let mut k = as_client(&mut server, &mut pci, GSP);
    for (label, count) in [(0u64, 0usize), (99, 4), (3, 1)] {
        let reply = k
            .ppcall(Channel::new(1), MessageInfo::new(label, count))
            .unwrap();
        assert_eq!(PciError::from_wire(reply.label()), PciError::BadRequest);
    }
    assert_eq!(server.trace().count(Trace::BadRequest { ch: 0 }.kind()), 4);
}

#[test]
fn a_model_that_stops_answering_fails_init_with_a_typed_error() {
    let model = presets::nvidia_gpu(&spec()).unwrap();
    // The kernel routes nothing to the model: every configuration PPC fails.
    let mut pci = ToModel {
        mrs: MessageRegisters::default(),
        model_ch: Channel::new(5),
        model,
        calls: 0,
    };
    let config = Config {
        clients: CLIENTS,
        policy: POLICY,
        windows: Windows::default(),
        root_bus: 0,
    };
    let mut server = PciServer::new(ModelPort::new(MODEL), config);
    assert_eq!(
        server.init(&mut pci),
        Err(pci_server::EnumError::Access(
            pci_server::ConfigError::Transport
        ))
    );
    assert!(server.functions().is_empty());
    assert_eq!(server.trace().count(Trace::EnumFailed.kind()), 1);
}
