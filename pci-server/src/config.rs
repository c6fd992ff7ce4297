//! The one way the server touches configuration space: [`ConfigSpace`], with three backends:
//! [`crate::Ecam`] (seL4: memory-mapped), [`PpcConfig`] (hosted: PPCs to the device model) and
//! [`crate::emul::Topology`] (tests, the model itself, `cargo xtask lspci`).
//!
//! [`ConfigPort`] is how the server reaches a backend while handling a PPC: ECAM and the emulator
//! need nothing, but the PPC backend borrows the kernel for the duration of the access.

use pci_api::cfg::ConfigClient;
pub use pci_api::cfg::ConfigError;
use pci_api::{Bdf, Width};
use pd_core::{Channel, Kernel};

/// Byte-granular access to the configuration space of every function.
///
/// Semantics every backend keeps: a read from an absent function (or beyond a function's
/// configuration space) returns all ones, as a PCIe root complex answers an unsupported request;
/// a write there is dropped. Offsets must be naturally aligned and inside 4 KiB.
pub trait ConfigSpace {
    /// Read `width` bytes at `offset` of `bdf`.
    ///
    /// # Errors
    /// [`ConfigError::BadOffset`] for a misaligned or out-of-range offset;
    /// [`ConfigError::Transport`] when the access could not be made at all.
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError>;

    /// Write `value` (`width` bytes) at `offset` of `bdf`.
    ///
    /// # Errors
    /// As [`ConfigSpace::read`]; [`ConfigError::BadWidth`] when `value` is wider than `width`.
    fn write(&mut self, bdf: Bdf, offset: u16, width: Width, value: u32)
        -> Result<(), ConfigError>;

    /// Read one byte.
    ///
    /// # Errors
    /// As [`ConfigSpace::read`].
    fn read8(&mut self, bdf: Bdf, offset: u16) -> Result<u8, ConfigError> {
        // CAST: an 8-bit read returns at most 0xff.
        self.read(bdf, offset, Width::U8).map(|v| v as u8)
    }

    /// Read two bytes.
    ///
    /// # Errors
    /// As [`ConfigSpace::read`].
    fn read16(&mut self, bdf: Bdf, offset: u16) -> Result<u16, ConfigError> {
        // CAST: a 16-bit read returns at most 0xffff.
        self.read(bdf, offset, Width::U16).map(|v| v as u16)
    }

    /// Read four bytes.
    ///
    /// # Errors
    /// As [`ConfigSpace::read`].
    fn read32(&mut self, bdf: Bdf, offset: u16) -> Result<u32, ConfigError> {
        self.read(bdf, offset, Width::U32)
    }

    /// Write one byte.
    ///
    /// # Errors
    /// As [`ConfigSpace::write`].
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) -> Result<(), ConfigError> {
        self.write(bdf, offset, Width::U8, u32::from(value))
    }

    /// Write two bytes.
    ///
    /// # Errors
    /// As [`ConfigSpace::write`].
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) -> Result<(), ConfigError> {
        self.write(bdf, offset, Width::U16, u32::from(value))
    }

    /// Write four bytes.
    ///
    /// # Errors
    /// As [`ConfigSpace::write`].
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) -> Result<(), ConfigError> {
        self.write(bdf, offset, Width::U32, value)
    }
}

/// Check an access before a backend performs it.
///
/// # Errors
/// [`ConfigError::BadOffset`] or [`ConfigError::BadWidth`].
pub fn check_access(offset: u16, width: Width, value: u32) -> Result<(), ConfigError> {
    pci_api::cfg::ConfigRequest::check(offset, width)?;
    if value & !width.mask() != 0 {
        return Err(ConfigError::BadWidth);
    }
    Ok(())
}

/// Configuration space reached by PPC: the hosted-mode backend, talking to the device model over
/// `pci`'s channel to it (protocol in [`pci_api::cfg`]).
pub struct PpcConfig<'k> {
    k: &'k mut dyn Kernel,
    client: ConfigClient,
}

impl core::fmt::Debug for PpcConfig<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PpcConfig")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<'k> PpcConfig<'k> {
    /// Accesses as PPCs over `model` (the `pci` end of its channel to the device model).
    pub fn new(k: &'k mut dyn Kernel, model: Channel) -> Self {
        Self {
            k,
            client: ConfigClient::new(model),
        }
    }
}

impl ConfigSpace for PpcConfig<'_> {
    fn read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        self.client.read(self.k, bdf, offset, width)
    }

    fn write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        self.client.write(self.k, bdf, offset, width, value)
    }
}

/// How the server reaches configuration space while it holds the kernel handle of a PPC or
/// `init`. Every [`ConfigSpace`] is a port that ignores the kernel; [`ModelPort`] borrows it.
pub trait ConfigPort {
    /// Run `f` with the configuration space.
    fn with<R>(&mut self, k: &mut dyn Kernel, f: impl FnOnce(&mut dyn ConfigSpace) -> R) -> R;
}

impl<C: ConfigSpace> ConfigPort for C {
    fn with<R>(&mut self, _k: &mut dyn Kernel, f: impl FnOnce(&mut dyn ConfigSpace) -> R) -> R {
        f(self)
    }
}

/// The hosted-mode port: configuration accesses become PPCs over the channel to the device model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPort {
    model: Channel,
}

impl ModelPort {
    /// Accesses go over `model` (from the generated channel constants of `system.xml`).
    pub const fn new(model: Channel) -> Self {
        Self { model }
    }
}

impl ConfigPort for ModelPort {
    fn with<R>(&mut self, k: &mut dyn Kernel, f: impl FnOnce(&mut dyn ConfigSpace) -> R) -> R {
        f(&mut PpcConfig::new(k, self.model))
    }
}
