//! The seL4 bench image's IPC loops (issue 13): `bench.elf` is the ioctl bench client
//! ([`crate::bench_client`]) that, once the DRM stack answers, first logs when that was (`boot`)
//! and times bare PPC round trips (`ppc`) and notifications (`notify`) to `pong.elf`, a PD of
//! higher priority that answers every call at once and ignores notifications. Then it times the
//! GSP message queues with the device answering (`gspq_rtt`: a 64-byte RPC; `gspq_256k`: a
//! 256 KiB one with continuation records) and a `memcpy` of 256 KiB in the same PD, their
//! baseline (`memcpy_256k`), made by the gsp PD ([`crate::gsp::bench`]) on its call over a
//! bench-only channel ([`GSP`]): one call makes [`GSPQ_RTTS`] or [`GSPQ_BULKS`] of them, so a
//! call's own cost is a small share of each.
//!
//! The pair is not part of `system.xml`: `cargo xtask bench sel4` adds `pong` and the channel
//! ([`PONG`] at client0, [`CLIENT`] at pong, client0 the caller) to the image it derives from it,
//! and the channel to gsp ([`GSP`] at client0, [`AT_GSP`] at gsp) to the isolated image only: in
//! the monolithic one the call is refused and the GSP rows stay empty (gsp talks to the device
//! PD the same way in both).
//! A notification to a higher priority PD switches to it at once, so one `notify` is the signal,
//! pong's empty handler and the switch back, like sel4bench's "Notify" (priority 1 to 255).
//! Trust: pong trusts nobody and keeps no state; the loops check only that every call succeeds.

use crate::client_ext::Idle;
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo};

/// client0's end of the channel to pong.
pub const PONG: Channel = Channel::new(1);
/// pong's end of the channel to client0.
pub const CLIENT: Channel = Channel::new(0);
/// pong's priority: above the clients' (a PPC goes up), below every driver's.
pub const PONG_PRIORITY: u8 = 150;
/// Round trips timed, for each of `ppc` and `notify`.
pub const ROUNDS: u64 = 1000;
/// client0's end of the bench-only channel to gsp.
pub const GSP: Channel = Channel::new(2);
/// gsp's end of it (the last id, far from system.xml's).
pub const AT_GSP: Channel = Channel::new(61);
/// 64-byte GSP RPCs timed.
pub const GSPQ_RTTS: u64 = 200;
/// 256 KiB GSP RPCs timed.
pub const GSPQ_BULKS: u64 = 8;

/// `bench.elf`: the bench client with the IPC loops first.
pub fn init(k: &mut dyn Kernel) -> Idle {
    crate::bench_client::run(k, ipc)
}

fn ipc(k: &mut dyn Kernel, ready_ns: u64) {
    crate::bench_client::report("boot", ready_ns, 1);
    let t = k.now_ns();
    for _ in 0..ROUNDS {
        if let Err(e) = k.ppcall(PONG, MessageInfo::new(0, 0)) {
            log::error!("bench: ppc to pong failed: {e}");
            return;
        }
    }
    crate::bench_client::report("ppc", k.now_ns() - t, ROUNDS);
    let t = k.now_ns();
    for _ in 0..ROUNDS {
        if let Err(e) = k.notify(PONG) {
            log::error!("bench: notify to pong failed: {e}");
            return;
        }
    }
    crate::bench_client::report("notify", k.now_ns() - t, ROUNDS);
    use crate::gsp::bench::{BULK, MEMCPY, RTT};
    for (name, label, rounds) in [
        ("gspq_rtt", RTT, GSPQ_RTTS),
        ("gspq_256k", BULK, GSPQ_BULKS),
        ("memcpy_256k", MEMCPY, GSPQ_BULKS),
    ] {
        k.mrs().set(0, rounds);
        let t = k.now_ns();
        match k.ppcall(GSP, MessageInfo::new(label, 1)) {
            Ok(r) if r.label() == 0 => crate::bench_client::report(name, k.now_ns() - t, rounds),
            Ok(r) => log::error!("bench: {name} failed at gsp: error {}", r.label()),
            Err(e) => log::info!("bench: {name} not measured in this image: {e}"),
        }
    }
}

/// `pong.elf`'s handler.
#[derive(Debug)]
pub struct Pong;

impl Handler for Pong {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) {}

    fn protected(&mut self, _: &mut dyn Kernel, _: Channel, _: MessageInfo) -> MessageInfo {
        MessageInfo::new(0, 0)
    }
}

/// `pong.elf`.
pub fn pong(_: &mut dyn Kernel) -> Pong {
    Pong
}

#[cfg(test)]
mod tests {
    use super::*;
    use pd_core::{IpcError, MessageRegisters};

    struct K(MessageRegisters);

    impl Kernel for K {
        fn pd_name(&self) -> &str {
            "pong"
        }
        fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
            Ok(())
        }
        fn ppcall(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, IpcError> {
            Err(IpcError::Unsupported)
        }
        fn mrs(&mut self) -> &mut MessageRegisters {
            &mut self.0
        }
        fn now_ns(&self) -> u64 {
            0
        }
    }

    #[test]
    fn pong_answers_every_call_empty_with_label_zero() {
        let mut k = K(MessageRegisters::default());
        let mut p = pong(&mut k);
        let reply = p.protected(&mut k, CLIENT, MessageInfo::new(7, 3));
        assert_eq!((reply.label(), reply.count()), (0, 0));
    }
}
