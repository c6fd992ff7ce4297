//! The log's way out on a release kernel, which has no debug console: a PL011 UART (QEMU
//! `virt`'s, at 0x0900_0000) mapped into the one PD that must be heard. `cargo xtask bench sel4
//! --config release` maps it into the bench client and has the Microkit tool patch its address
//! into `pd_sel4_uart`; in every other PD, and in every other image, the symbol stays 0 and the
//! log stays silent.
#![allow(unsafe_code)]

/// Write `bytes` to the UART, if this PD has one. Only a release kernel's console uses it.
#[sel4::sel4_cfg(not(PRINTING))]
pub fn put(bytes: &[u8]) {
    /// PL011 registers: data, flags, and the flag "transmit FIFO full" (Arm PrimeCell UART PL011
    /// TRM, DDI 0183, 3.3.1 UARTDR at 0x000, 3.3.3 UARTFR at 0x018, TXFF bit 5).
    const DR: usize = 0x000;
    const FR: usize = 0x018;
    const TXFF: u32 = 1 << 5;
    // Where the UART is mapped in this PD (`setvar_vaddr` of its map), or 0.
    let base = *sel4_microkit::var! {
        #[used(linker)]
        pd_sel4_uart: usize = 0
    };
    if base == 0 {
        return;
    }
    let (dr, fr) = ((base + DR) as *mut u32, (base + FR) as *const u32);
    for &b in bytes {
        // SAFETY: the Microkit tool patched `base` with the vaddr of a 4 KiB uncached mapping of
        // the PL011's registers, which only this PD maps; a register access has no other effect.
        unsafe {
            while core::ptr::read_volatile(fr) & TXFF != 0 {}
            core::ptr::write_volatile(dr, u32::from(b));
        }
    }
}
