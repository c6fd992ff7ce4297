//! What the campaign injects, and where: every fault kind into every PD it applies to, as
//! `pd_core::faults` actions built from the real constants (channel ids generated from
//! `system.xml`, alloc-server's error code, the GSP model's knob codes).

use pd_core::faults::Action;
use pd_programs::sys;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The PD panics (abort).
    Panic,
    /// The PD reads outside its mappings (VM fault).
    WildRead,
    /// The PD writes outside its mappings (VM fault).
    WildWrite,
    /// The PD spins forever: only a watchdog can tell.
    Hang,
    /// The PD's next reply has flipped bits.
    CorruptReply,
    /// alloc-server answers out-of-memory for a few requests.
    OutOfMemory,
    /// The GSP firmware crashes (the model's `Crash` knob).
    GspCrash,
    /// The GSP firmware sends garbage (a bad checksum, a skipped sequence number, an oversized
    /// message or unsolicited events: the model's knobs).
    GspGarbage,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Self; 8] = [
        Self::Panic,
        Self::WildRead,
        Self::WildWrite,
        Self::Hang,
        Self::CorruptReply,
        Self::OutOfMemory,
        Self::GspCrash,
        Self::GspGarbage,
    ];

    /// Its name in reports and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::WildRead => "wild-read",
            Self::WildWrite => "wild-write",
            Self::Hang => "hang",
            Self::CorruptReply => "corrupt-reply",
            Self::OutOfMemory => "oom",
            Self::GspCrash => "gsp-crash",
            Self::GspGarbage => "gsp-garbage",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the faulted PD dies (or must be killed): isolation has to contain it.
    pub const fn kills_the_pd(self) -> bool {
        matches!(
            self,
            Self::Panic | Self::WildRead | Self::WildWrite | Self::Hang
        )
    }
}

/// The driver PDs: the supervisor restarts each of them.
pub const DRIVERS: [&str; 5] = [
    sys::pci::NAME,
    sys::alloc::NAME,
    sys::gsp::NAME,
    sys::gpu::NAME,
    sys::drm::NAME,
];

/// One place a fault goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// What.
    pub kind: Kind,
    /// The PD (or device) that is faulty, for the report.
    pub pd: &'static str,
    /// The PD whose injector fires it (the model's knobs are set by the gsp PD).
    pub inject_in: &'static str,
}

impl Target {
    /// Whether the fault can make the gsp PD boot the firmware again in place: a GSP crash or
    /// garbage (the model's knobs, a corrupt reply from the model), or a restarted alloc-server
    /// (its fresh instance reuses the DMA memory of the GSP's queues).
    pub fn reboots_gsp(self) -> bool {
        self.pd == sys::gsp_model::NAME || (self.pd == sys::alloc::NAME && self.kind.kills_the_pd())
    }
}

/// Every target of the campaign, in report order.
pub fn targets() -> Vec<Target> {
    let mut out = Vec::new();
    let at = |kind, pd| Target {
        kind,
        pd,
        inject_in: pd,
    };
    for kind in Kind::ALL.into_iter().filter(|k| k.kills_the_pd()) {
        out.extend(DRIVERS.iter().map(|&pd| at(kind, pd)));
    }
    out.extend(
        DRIVERS
            .iter()
            .chain(&[sys::gsp_model::NAME])
            .map(|&pd| at(Kind::CorruptReply, pd)),
    );
    out.push(at(Kind::OutOfMemory, sys::alloc::NAME));
    for kind in [Kind::GspCrash, Kind::GspGarbage] {
        out.push(Target {
            kind,
            pd: sys::gsp_model::NAME,
            inject_in: sys::gsp::NAME,
        });
    }
    out
}

/// The model's wire code for `fault` (`gsp_model::Fault::from_wire` is the one definition).
fn knob(fault: gsp_model::Fault) -> u64 {
    (0..64)
        .find(|&c| gsp_model::Fault::from_wire(c, 0) == Some(fault))
        .unwrap_or(0)
}

/// The model's knobs that make the firmware send garbage.
const GARBAGE: [gsp_model::Fault; 4] = [
    gsp_model::Fault::CorruptChecksum,
    gsp_model::Fault::SkipSeqNum,
    gsp_model::Fault::OversizeElemCount,
    gsp_model::Fault::SpuriousEvents,
];

/// Wild addresses: the null page, or a page far from anything any platform maps.
fn wild_addr(r: u64) -> u64 {
    if r & 1 == 0 {
        (r >> 8) & 0xff8
    } else {
        pd_core::faults::WILD_ADDR + ((r >> 8) & 0xfff_f000)
    }
}

/// The action for `target`, its details (address, bit, knob, count) drawn from `r`.
pub fn action(target: Target, r: u64) -> Action {
    match target.kind {
        Kind::Panic => Action::Panic,
        Kind::WildRead => Action::WildRead(wild_addr(r)),
        Kind::WildWrite => Action::WildWrite(wild_addr(r)),
        Kind::Hang => Action::Hang,
        Kind::CorruptReply => Action::Corrupt(1 << (r % 64)),
        // Exhaustion refuses allocations; a server out of memory still takes frees.
        Kind::OutOfMemory => Action::Refuse {
            label: alloc_api::AllocError::OutOfMemory as u64,
            // CAST: below 4.
            count: 1 + (r % 4) as u32,
            only: Some(alloc_api::wire::Opcode::Alloc as u64),
        },
        Kind::GspCrash | Kind::GspGarbage => {
            let fault = if target.kind == Kind::GspCrash {
                gsp_model::Fault::Crash
            } else {
                // CAST: below 4.
                GARBAGE
                    .get((r % 4) as usize)
                    .copied()
                    .unwrap_or(gsp_model::Fault::CorruptChecksum)
            };
            Action::Call {
                ch: sys::gsp::channels::GSP_MODEL,
                label: gsp_model::ppc::LABEL_FAULT,
                mrs: [knob(fault), 0],
                count: 2,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_target_and_a_name_that_parses_back() {
        let t = targets();
        for k in Kind::ALL {
            assert!(t.iter().any(|t| t.kind == k), "{k:?}");
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(t.len(), 4 * 5 + 6 + 1 + 2);
        assert!(t
            .iter()
            .all(|t| t.pd != "supervisor" && !t.pd.starts_with("client")));
    }

    #[test]
    fn actions_use_the_servers_own_codes() {
        let gsp_crash = Target {
            kind: Kind::GspCrash,
            pd: "gsp_model",
            inject_in: "gsp",
        };
        let Action::Call { ch, label, mrs, .. } = action(gsp_crash, 0) else {
            panic!("a knob is a call");
        };
        assert_eq!(ch, sys::gsp::channels::GSP_MODEL);
        assert_eq!(label, gsp_model::ppc::LABEL_FAULT);
        assert_eq!(
            gsp_model::Fault::from_wire(mrs[0], 0),
            Some(gsp_model::Fault::Crash)
        );
        for r in 0..8 {
            let garbage = Target {
                kind: Kind::GspGarbage,
                ..gsp_crash
            };
            let Action::Call { mrs, .. } = action(garbage, r) else {
                panic!("a knob is a call");
            };
            assert!(GARBAGE.contains(&gsp_model::Fault::from_wire(mrs[0], 0).unwrap()));
        }
        let oom = Target {
            kind: Kind::OutOfMemory,
            pd: "alloc",
            inject_in: "alloc",
        };
        assert!(matches!(
            action(oom, 5),
            Action::Refuse {
                label: 10,
                count: 2,
                only: Some(1)
            }
        ));
    }

    #[test]
    fn wild_addresses_are_in_the_null_page_or_far_away() {
        for r in 0..1000u64 {
            let a = wild_addr(r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!(
                a < 0x1000 || (a >= pd_core::faults::WILD_ADDR && a < 0x2000_0000_0000),
                "{a:#x}"
            );
            assert_eq!(a % 8, 0);
        }
    }
}
