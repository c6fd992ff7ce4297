//! Typed BAR0 registers over an MMIO access trait.
