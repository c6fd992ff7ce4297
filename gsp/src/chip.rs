//! Chip identity: BOOT_0/BOOT_42 decoding, chipset, architecture, signature section.
