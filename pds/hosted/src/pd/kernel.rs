//! The hosted PD's [`Kernel`]: channel rights are checked against the PD's boot spec (and a channel
//! the PD has no page for cannot be reached at all); refusals are logged with the PD's name.

use crate::channel::{self, Ends};
use crate::pages::{ChannelPage, ControlPage, CMD_RESTART, CMD_STOP, VERDICT_FAIL, VERDICT_PASS};
use crate::sys::{clock, eventfd::EventFd};
use crate::wait::Spins;
use pd_core::{Channel, Child, IpcError, Kernel, MessageInfo, MessageRegisters, Verdict};
use std::sync::atomic::Ordering;

/// One channel end of this PD.
#[derive(Debug)]
pub struct ChannelEnd {
    /// Its id in this PD.
    pub id: Channel,
    /// The last notification count delivered.
    pub seen: u32,
    /// The shared page (mapped for the PD's life).
    pub page: &'static ChannelPage,
    /// Which end is ours.
    pub ends: Ends,
    /// We may call the peer.
    pub pp: bool,
    /// We may notify the peer.
    pub notify: bool,
    /// The peer may call us.
    pub serves: bool,
    /// The peer's name.
    pub peer: String,
}

/// The kernel as one hosted PD sees it.
#[derive(Debug)]
pub struct HostedKernel {
    pub(crate) name: String,
    pub(crate) spins: Spins,
    pub(crate) control: &'static ControlPage,
    pub(crate) doorbell: EventFd,
    /// The PD's channel ends.
    pub(crate) ends: Vec<ChannelEnd>,
    /// Index into `ends` by channel id.
    pub(crate) by_id: Vec<Option<usize>>,
    /// Child ids.
    pub(crate) children: Vec<u8>,
    pub(crate) mrs: MessageRegisters,
    pub(crate) timeout: Option<u64>,
}

impl HostedKernel {
    fn end(&self, ch: Channel, what: &str) -> Result<&ChannelEnd, IpcError> {
        let index = self.by_id.get(usize::from(ch.index())).copied().flatten();
        let end = index.and_then(|i| self.ends.get(i));
        end.ok_or_else(|| self.refuse(what, ch, IpcError::UndeclaredChannel))
    }

    fn refuse(&self, what: &str, ch: Channel, e: IpcError) -> IpcError {
        log::warn!("{}: {what} on channel {ch} refused: {e}", self.name);
        e
    }

    fn command(&mut self, child: Child, cmd: u32) -> Result<(), IpcError> {
        let slot = self
            .children
            .contains(&child.index())
            .then(|| self.control.child_cmd.get(usize::from(child.index())))
            .flatten();
        let Some(slot) = slot else {
            log::warn!("{}: {child:?} is not a child of this PD", self.name);
            return Err(IpcError::NotAChild);
        };
        slot.store(cmd, Ordering::SeqCst);
        self.doorbell.signal();
        Ok(())
    }
}

impl Kernel for HostedKernel {
    fn pd_name(&self) -> &str {
        &self.name
    }

    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        let end = self.end(ch, "notify")?;
        if !end.notify {
            return Err(self.refuse("notify", ch, IpcError::NoNotifyRight));
        }
        channel::notify(end.page, end.ends);
        Ok(())
    }

    fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        let end = self.end(ch, "call")?;
        if !end.pp {
            return Err(self.refuse("call", ch, IpcError::NoPpcRight));
        }
        let (page, ends, spin) = (end.page, end.ends, self.spins.call);
        let r = channel::call(page, ends, &mut self.mrs, msg, spin);
        if let Err(e) = r {
            let peer = self.end(ch, "call").map_or("?", |e| e.peer.as_str());
            log::debug!("{}: call to {peer} failed: {e}", self.name);
        }
        r
    }

    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }

    fn restart_child(&mut self, child: Child) -> Result<(), IpcError> {
        self.command(child, CMD_RESTART)
    }

    fn stop_child(&mut self, child: Child) -> Result<(), IpcError> {
        self.command(child, CMD_STOP)
    }

    fn now_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn set_timeout(&mut self, at_ns: u64) -> Result<(), IpcError> {
        self.timeout = Some(at_ns);
        Ok(())
    }

    fn yield_now(&mut self) {
        std::thread::yield_now();
    }

    fn report_verdict(&mut self, verdict: Verdict) -> Result<(), IpcError> {
        let v = match verdict {
            Verdict::Pass => VERDICT_PASS,
            Verdict::Fail => VERDICT_FAIL,
        };
        self.control.verdict.store(v, Ordering::SeqCst);
        self.doorbell.signal();
        Ok(())
    }
}
