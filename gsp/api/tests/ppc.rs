//! The gsp-api PPC encoding end to end: `GspClient` calls through a loopback kernel into
//! `serve` over a fake `GspOps`, with the platform's register-copy semantics.

use gsp_api::{
    serve, CrashCause, EventKind, GspClient, GspError, GspEvent, GspOps, GspState, Health, Op,
    RmAlloc, RmControl, StaticInfo, MAX_INLINE_PARAMS,
};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use zerocopy::FromZeros;

/// A gsp server stand-in recording what it was asked.
#[derive(Default)]
struct Fake {
    allocs: Vec<(RmAlloc, Vec<u8>)>,
    controls: Vec<(RmControl, Vec<u8>)>,
    frees: Vec<(u32, u32, u32)>,
    events: Vec<GspEvent>,
    rm_status: u32,
    not_ready: bool,
}

impl GspOps for Fake {
    fn rm_alloc(&mut self, req: &RmAlloc, params: &mut [u8]) -> Result<(), GspError> {
        self.allocs.push((*req, params.to_vec()));
        params.iter_mut().for_each(|b| *b = b.wrapping_add(1));
        match self.rm_status {
            0 => Ok(()),
            status => Err(GspError::Rm { status }),
        }
    }

    fn rm_control(&mut self, req: &RmControl, params: &mut [u8]) -> Result<(), GspError> {
        if self.not_ready {
            return Err(GspError::NotReady);
        }
        self.controls.push((*req, params.to_vec()));
        params.reverse();
        match self.rm_status {
            0 => Ok(()),
            status => Err(GspError::Rm { status }),
        }
    }

    fn rm_free(&mut self, client: u32, parent: u32, object: u32) -> Result<(), GspError> {
        self.frees.push((client, parent, object));
        Ok(())
    }

    fn static_info(&mut self) -> Result<StaticInfo, GspError> {
        let mut s = StaticInfo::new_zeroed();
        s.fb_length = 0x3_0000_0000;
        s.internal_client = 0xc1e0_0001;
        s.chipset = 0x192;
        s.gpu_name[..5].copy_from_slice(b"AD102");
        Ok(s)
    }

    fn health(&mut self) -> Health {
        Health {
            state: GspState::Crashed as u32,
            generation: 3,
            crash: CrashCause::OsErrorLog as u32,
            last_xid: 109,
            boot_step: 0,
            boot_error: 0,
            rejected_messages: 2,
            dropped_events: 0,
        }
    }

    fn next_event(&mut self) -> Option<GspEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }
}

/// A kernel whose PPCs go straight to `serve`, copying registers as the platform does.
struct Loopback {
    mrs: MessageRegisters,
    server: Fake,
    dead: bool,
    last_request: Option<(MessageInfo, MessageRegisters)>,
}

impl Loopback {
    fn new() -> Self {
        Self {
            mrs: MessageRegisters::default(),
            server: Fake::default(),
            dead: false,
            last_request: None,
        }
    }
}

impl Kernel for Loopback {
    fn pd_name(&self) -> &str {
        "gpu"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn ppcall(&mut self, _: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        if self.dead {
            return Err(IpcError::PeerFaulted);
        }
        let mut callee = MessageRegisters::default();
        callee.copy_prefix(&self.mrs, msg.count());
        self.last_request = Some((msg, callee.clone()));
        let reply = serve(&mut self.server, &mut callee, msg);
        self.mrs.copy_prefix(&callee, reply.count());
        Ok(reply)
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

const CH: Channel = Channel::new(1);

#[test]
fn rm_alloc_carries_every_field_and_returns_the_params() {
    let mut k = Loopback::new();
    let gsp = GspClient::new(CH);
    let req = RmAlloc {
        client: 0xc1d0_0001,
        parent: 2,
        object: 3,
        class: 0xa06f,
        flags: 5,
    };
    let mut params: Vec<u8> = (0..37).collect();
    gsp.rm_alloc(&mut k, &req, &mut params).unwrap();
    assert_eq!(k.server.allocs, [(req, (0..37).collect::<Vec<u8>>())]);
    assert_eq!(params, (1..38).collect::<Vec<u8>>());
    // The wire form (golden): label 1, mr0..2 header words, params packed little-endian.
    let (msg, mrs) = k.last_request.clone().unwrap();
    assert_eq!((msg.label(), msg.count()), (1, 3 + 5));
    assert_eq!(mrs.get(0), 0x0000_0002_c1d0_0001);
    assert_eq!(mrs.get(1), 0x0000_a06f_0000_0003);
    assert_eq!(mrs.get(2), 0x0000_0025_0000_0005);
    assert_eq!(mrs.get(3), 0x0706_0504_0302_0100);
    assert_eq!(mrs.get(7), 0x0000_0024_2322_2120);
}

#[test]
fn rm_errors_carry_the_status_and_still_return_params() {
    let mut k = Loopback::new();
    k.server.rm_status = 0x1f;
    let gsp = GspClient::new(CH);
    let req = RmControl {
        client: 1,
        object: 2,
        cmd: 0x2080_1234,
        flags: 0,
    };
    let mut params = [1u8, 2, 3];
    assert_eq!(
        gsp.rm_control(&mut k, &req, &mut params),
        Err(GspError::Rm { status: 0x1f })
    );
    assert_eq!(params, [3, 2, 1]);
    k.server.not_ready = true;
    assert_eq!(
        gsp.rm_control(&mut k, &req, &mut params),
        Err(GspError::NotReady)
    );
}

#[test]
fn free_static_info_health_and_events() {
    let mut k = Loopback::new();
    let gsp = GspClient::new(CH);
    gsp.rm_free(&mut k, 1, 0, 9).unwrap();
    assert_eq!(k.server.frees, [(1, 0, 9)]);
    let s = gsp.static_info(&mut k).unwrap();
    assert_eq!(
        (s.fb_length, s.internal_client, s.chipset),
        (0x3_0000_0000, 0xc1e0_0001, 0x192)
    );
    assert_eq!(&s.gpu_name[..6], b"AD102\0");
    let h = gsp.health(&mut k).unwrap();
    assert_eq!(GspState::try_from(h.state), Ok(GspState::Crashed));
    assert_eq!(CrashCause::try_from(h.crash), Ok(CrashCause::OsErrorLog));
    assert_eq!((h.generation, h.last_xid, h.rejected_messages), (3, 109, 2));
    assert_eq!(gsp.next_event(&mut k), Ok(None));
    let ev = GspEvent {
        kind: EventKind::RcTriggered as u32,
        chid: 4,
        engine: 1,
        except_type: 31,
        h_client: 0,
        h_event: 0,
        notify_index: 0,
        data: 0,
        fault_addr: 0xdead_b000,
    };
    k.server.events.push(ev);
    assert_eq!(gsp.next_event(&mut k), Ok(Some(ev)));
    assert_eq!(EventKind::try_from(ev.kind), Ok(EventKind::RcTriggered));
}

#[test]
fn oversized_params_are_refused_on_both_sides() {
    let mut k = Loopback::new();
    let gsp = GspClient::new(CH);
    let req = RmAlloc {
        client: 1,
        parent: 1,
        object: 2,
        class: 3,
        flags: 0,
    };
    let mut big = vec![0u8; MAX_INLINE_PARAMS + 1];
    assert_eq!(
        gsp.rm_alloc(&mut k, &req, &mut big),
        Err(GspError::TooLarge)
    );
    let mut fits = vec![7u8; MAX_INLINE_PARAMS];
    gsp.rm_alloc(&mut k, &req, &mut fits).unwrap();
    assert_eq!(fits, vec![8u8; MAX_INLINE_PARAMS]);
    // A caller that claims more parameter bytes than registers it sent.
    let mut mrs = MessageRegisters::default();
    mrs.set(2, 100);
    let r = serve(
        &mut k.server,
        &mut mrs,
        MessageInfo::new(Op::RmControl as u64, 4),
    );
    assert_eq!(r.label(), GspError::BadRequest.code());
    mrs.set(2, u64::MAX);
    let r = serve(
        &mut k.server,
        &mut mrs,
        MessageInfo::new(Op::RmControl as u64, 64),
    );
    assert_eq!(r.label(), GspError::BadRequest.code());
    let r = serve(
        &mut k.server,
        &mut mrs,
        MessageInfo::new(Op::RmFree as u64, 1),
    );
    assert_eq!(r.label(), GspError::BadRequest.code());
    assert!(k.server.controls.is_empty() && k.server.frees.is_empty());
}

#[test]
fn unknown_ops_and_dead_servers_are_typed_errors() {
    let mut k = Loopback::new();
    let mut mrs = MessageRegisters::default();
    for label in [0u64, 7, 99, u64::MAX] {
        let r = serve(&mut k.server, &mut mrs, MessageInfo::new(label, 0));
        assert_eq!(r.label(), GspError::BadRequest.code());
    }
    k.dead = true;
    assert_eq!(
        GspClient::new(CH).health(&mut k),
        Err(GspError::Unreachable)
    );
}

#[test]
fn error_codes_round_trip() {
    for e in [
        GspError::NotReady,
        GspError::Crashed,
        GspError::Rm { status: 0x65 },
        GspError::Timeout,
        GspError::TooLarge,
        GspError::BadRequest,
        GspError::Queue,
        GspError::Unreachable,
    ] {
        let status = match e {
            GspError::Rm { status } => status,
            _ => 0,
        };
        assert_ne!(e.code(), 0);
        assert_eq!(GspError::from_code(e.code(), status), e);
    }
    assert_eq!(GspError::from_code(42, 0), GspError::BadRequest);
    assert_eq!(GspState::try_from(0), Err(0));
    assert_eq!(GspState::try_from(4), Ok(GspState::BootFailed));
    assert_eq!(CrashCause::try_from(5), Err(5));
    assert_eq!(EventKind::try_from(4), Ok(EventKind::OsErrorLog));
}
