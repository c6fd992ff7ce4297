//! Message info and message registers, as seL4 and Microkit define them.

use core::fmt;

/// Microkit passes at most 64 words in a PPC and returns at most 64 (manual, "Protected procedures").
pub const MSG_REGS: usize = 64;

/// The tag of a message: a label (52 bits on 64-bit seL4) and how many message registers it uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    label: u64,
    count: u8,
}

impl MessageInfo {
    /// seL4's label field is 52 bits wide on 64-bit kernels.
    pub const LABEL_MASK: u64 = (1 << 52) - 1;

    /// A message with `label` (truncated to 52 bits) and `count` registers (clamped to 64).
    pub const fn new(label: u64, count: usize) -> Self {
        let count = if count > MSG_REGS { MSG_REGS } else { count };
        // CAST: clamped to 64 just above.
        Self {
            label: label & Self::LABEL_MASK,
            count: count as u8,
        }
    }

    /// The label.
    pub const fn label(self) -> u64 {
        self.label
    }

    /// How many message registers carry the message.
    pub const fn count(self) -> usize {
        self.count as usize
    }
}

impl fmt::Debug for MessageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MessageInfo(label={:#x}, count={})",
            self.label, self.count
        )
    }
}

/// A PD's message registers. Reads past the end give 0 and writes past the end are dropped, so a
/// peer-supplied count can never index out of bounds.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageRegisters([u64; MSG_REGS]);

impl Default for MessageRegisters {
    fn default() -> Self {
        Self([0; MSG_REGS])
    }
}

impl fmt::Debug for MessageRegisters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.0.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        f.debug_list().entries(self.0.iter().take(used)).finish()
    }
}

impl MessageRegisters {
    /// Register `i`, or 0 when `i` is out of range.
    pub fn get(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// Set register `i`; out-of-range writes are dropped.
    pub fn set(&mut self, i: usize, value: u64) {
        if let Some(r) = self.0.get_mut(i) {
            *r = value;
        }
    }

    /// All registers.
    pub fn as_slice(&self) -> &[u64; MSG_REGS] {
        &self.0
    }

    /// All registers, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u64; MSG_REGS] {
        &mut self.0
    }

    /// Copy the first `count` registers from `other` (the platform's PPC copy).
    pub fn copy_prefix(&mut self, other: &Self, count: usize) {
        let n = count.min(MSG_REGS);
        if let (Some(dst), Some(src)) = (self.0.get_mut(..n), other.0.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
}
