//! NVIDIA GSP firmware control (no_std): everything between "a GPU was granted to us" and "the GSP
//! answers RPCs".
//!
//! - firmware images and boot memory: [`elf`] (GSP ELF and BinHdr blobs), [`radix3`], [`fb`]
//!   (top-of-VRAM layout), [`regs`] (typed BAR0 registers over an MMIO trait), [`chip`];
//! - the message queues and RPCs: [`cmdq`], [`rpc`], [`sequencer`], [`boot`] (the boot state machine);
//! - [`mmu`]: the GPU's page-table formats, shared by gpu-server (writer) and the model (walker);
//! - [`fw`]: firmware-version-specific wire types, used only through `fw::current`.
//!
//! Trust: the GPU and its firmware are peers, not friends. Everything read back from the device
//! (registers, queue headers, messages) is validated before use; nothing here panics on it.
#![no_std]
#![deny(unsafe_code)]

pub mod boot;
pub mod chip;
pub mod cmdq;
pub mod elf;
pub mod fb;
pub mod fw;
pub mod mmu;
pub mod radix3;
pub mod regs;
pub mod rpc;
pub mod sequencer;
