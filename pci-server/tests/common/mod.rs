//! Helpers shared by the integration tests: a log capture, test kernels, and checks.
#![allow(dead_code)]

use pci_api::{Bdf, Width};
use pci_server::emul::Topology;
use pci_server::{ConfigError, ConfigSpace};
use pd_core::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES.with(|l| l.borrow_mut().push(record.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;
static INIT: Once = Once::new();

/// Start capturing this thread's log lines (and drop what was captured so far).
pub fn capture_logs() {
    INIT.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    LINES.with(|l| l.borrow_mut().clear());
}

/// The log lines this thread produced since `capture_logs`.
pub fn logs() -> Vec<String> {
    LINES.with(|l| l.borrow().clone())
}

/// A kernel with message registers only: PPCs fail.
pub use pci_server::fuzz::NullKernel as Mrs;

/// The `pci` PD's kernel in hosted mode: PPCs on `model_ch` reach the device model's `serve`
/// (registers copied both ways, as the platform does).
pub struct ToModel<const N: usize> {
    pub mrs: MessageRegisters,
    pub model_ch: Channel,
    pub model: Topology<N>,
    pub calls: u64,
}

impl<const N: usize> Kernel for ToModel<N> {
    fn pd_name(&self) -> &str {
        "pci"
    }
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn ppcall(&mut self, ch: Channel, msg: MessageInfo) -> Result<MessageInfo, IpcError> {
        if ch != self.model_ch {
            return Err(IpcError::UndeclaredChannel);
        }
        self.calls += 1;
        let mut callee = Mrs::default();
        callee.0.copy_prefix(&self.mrs, msg.count());
        let reply = self.model.serve(&mut callee, msg);
        self.mrs.copy_prefix(&callee.0, reply.count());
        Ok(reply)
    }
    fn mrs(&mut self) -> &mut MessageRegisters {
        &mut self.mrs
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

/// A backend that fails one chosen access (reads, writes, or either), to test error paths.
pub struct Flaky<'a, C: ConfigSpace> {
    pub inner: &'a mut C,
    pub fail_at: u64,
    pub count: u64,
    pub reads: bool,
    pub writes: bool,
    /// The register whose write was made to fail, if any.
    pub failed_write: Option<u16>,
}

impl<C: ConfigSpace> Flaky<'_, C> {
    fn hit(&mut self) -> bool {
        self.count += 1;
        self.count == self.fail_at
    }
}

impl<C: ConfigSpace> ConfigSpace for Flaky<'_, C> {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        if self.reads && self.hit() {
            return Err(ConfigError::Transport);
        }
        self.inner.read(bdf, offset, width)
    }
    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        if self.writes && self.hit() {
            self.failed_write = Some(offset);
            return Err(ConfigError::Transport);
        }
        self.inner.write(bdf, offset, width, value)
    }
}

/// Counts accesses.
pub struct Counting<'a, C: ConfigSpace> {
    pub inner: &'a mut C,
    pub reads: u64,
    pub writes: u64,
}

impl<C: ConfigSpace> ConfigSpace for Counting<'_, C> {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        self.reads += 1;
        self.inner.read(bdf, offset, width)
    }
    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        self.writes += 1;
        self.inner.write(bdf, offset, width, value)
    }
}

pub fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(bus, dev, func).unwrap()
}
