//! Configuration-space register layout (PCI Local Bus 3.0 and PCI Express Base 6.0; names as in
//! Linux's `include/uapi/linux/pci_regs.h`, so they grep against it). Offsets only: every access
//! goes through [`crate::ConfigSpace`].

/// Vendor id (16 bits); device id follows at 0x02.
pub const VENDOR_ID: u16 = 0x00;
/// Command register (16 bits); status follows at 0x06.
pub const COMMAND: u16 = 0x04;
/// Status register (16 bits).
pub const STATUS: u16 = 0x06;
/// Revision id (8 bits); class code (24 bits) follows at 0x09.
pub const REVISION: u16 = 0x08;
/// Cache line size; latency timer at 0x0d, header type at 0x0e, BIST at 0x0f.
pub const CACHE_LINE: u16 = 0x0c;
/// Header type (bit 7: multi-function).
pub const HEADER_TYPE: u16 = 0x0e;
/// First base address register.
pub const BAR0: u16 = 0x10;
/// Subsystem vendor id (type 0 only); subsystem id at 0x2e.
pub const SUBSYSTEM_VENDOR: u16 = 0x2c;
/// Expansion ROM BAR (type 0).
pub const ROM_TYPE0: u16 = 0x30;
/// Capability list pointer.
pub const CAP_PTR: u16 = 0x34;
/// Expansion ROM BAR (type 1).
pub const ROM_TYPE1: u16 = 0x38;
/// Interrupt line.
pub const INTERRUPT_LINE: u16 = 0x3c;

/// Type 1: primary bus; secondary (0x19), subordinate (0x1a), secondary latency (0x1b) follow.
pub const PRIMARY_BUS: u16 = 0x18;
/// Type 1: secondary bus number.
pub const SECONDARY_BUS: u16 = 0x19;
/// Type 1: subordinate bus number.
pub const SUBORDINATE_BUS: u16 = 0x1a;
/// Type 1: I/O base (8 bits; limit at 0x1d, secondary status at 0x1e).
pub const IO_BASE: u16 = 0x1c;
/// Type 1: secondary status (16 bits).
pub const SEC_STATUS: u16 = 0x1e;
/// Type 1: memory base (16 bits, address bits 31:20 in 15:4); limit at 0x22.
pub const MEMORY_BASE: u16 = 0x20;
/// Type 1: prefetchable memory base (16 bits; low nibble 1 = 64-bit); limit at 0x26.
pub const PREF_MEMORY_BASE: u16 = 0x24;
/// Type 1: prefetchable base, address bits 63:32.
pub const PREF_BASE_UPPER32: u16 = 0x28;
/// Type 1: prefetchable limit, address bits 63:32.
pub const PREF_LIMIT_UPPER32: u16 = 0x2c;
/// Type 1: I/O base bits 31:16 (16 bits); limit bits 31:16 at 0x32.
pub const IO_BASE_UPPER16: u16 = 0x30;
/// Type 1: bridge control (16 bits).
pub const BRIDGE_CONTROL: u16 = 0x3e;

/// Command: respond to I/O space accesses.
pub const CMD_IO: u16 = 1 << 0;
/// Command: respond to memory space accesses.
pub const CMD_MEMORY: u16 = 1 << 1;
/// Command: may master the bus (DMA, and MSI writes).
pub const CMD_MASTER: u16 = 1 << 2;
/// Command: parity error response.
pub const CMD_PARITY: u16 = 1 << 6;
/// Command: SERR# enable.
pub const CMD_SERR: u16 = 1 << 8;
/// Command: INTx emulation disable.
pub const CMD_INTX_DISABLE: u16 = 1 << 10;

/// Status: the capability list exists.
pub const STATUS_CAP_LIST: u16 = 1 << 4;
/// Status bits that are write-one-to-clear (parity, aborts, SERR, parity error).
pub const STATUS_W1C: u16 = 0xf900;

/// Header type field values (bits 6:0).
pub const HEADER_NORMAL: u8 = 0;
/// PCI-to-PCI bridge.
pub const HEADER_BRIDGE: u8 = 1;
/// CardBus bridge.
pub const HEADER_CARDBUS: u8 = 2;
/// Header type bit 7.
pub const HEADER_MULTI_FUNCTION: u8 = 0x80;

/// BAR bit 0: I/O space.
pub const BAR_IO: u32 = 1;
/// Memory BAR type field (bits 2:1): 64-bit.
pub const BAR_MEM_TYPE_64: u32 = 0b10;
/// Memory BAR: prefetchable (bit 3).
pub const BAR_PREFETCH: u32 = 1 << 3;
/// Address bits of a memory BAR.
pub const BAR_MEM_MASK: u32 = !0xf;
/// Address bits of an I/O BAR.
pub const BAR_IO_MASK: u32 = !0x3;
/// Address bits of an expansion ROM BAR (bit 0 is the enable).
pub const ROM_ADDRESS_MASK: u32 = !0x7ff;

/// Legacy capability ids.
pub mod cap {
    /// Power management.
    pub const PM: u16 = 0x01;
    /// Vital product data.
    pub const VPD: u16 = 0x03;
    /// Message signalled interrupts.
    pub const MSI: u16 = 0x05;
    /// PCI-X.
    pub const PCIX: u16 = 0x07;
    /// Vendor specific.
    pub const VNDR: u16 = 0x09;
    /// Bridge subsystem vendor id.
    pub const SSVID: u16 = 0x0d;
    /// PCI Express.
    pub const EXP: u16 = 0x10;
    /// MSI-X.
    pub const MSIX: u16 = 0x11;
}

/// Extended capability ids.
pub mod ext {
    /// Advanced error reporting.
    pub const AER: u16 = 0x01;
    /// Alternative routing-id interpretation.
    pub const ARI: u16 = 0x0e;
    /// Single-root I/O virtualisation.
    pub const SRIOV: u16 = 0x10;
    /// Resizable BAR.
    pub const REBAR: u16 = 0x15;
    /// Access control services.
    pub const ACS: u16 = 0x0d;
    /// ARI capability register (16 bits at +4): next function number in bits 15:8.
    pub const ARI_CAP: u16 = 0x04;
}

/// MSI capability: message control (16 bits at +2).
pub const MSI_FLAGS: u16 = 0x02;
/// MSI control: enable.
pub const MSI_FLAGS_ENABLE: u16 = 1 << 0;
/// MSI control: multiple message enable (bits 6:4).
pub const MSI_FLAGS_QSIZE: u16 = 0x70;
/// MSI control: 64-bit address capable.
pub const MSI_FLAGS_64BIT: u16 = 1 << 7;
/// MSI control: per-vector masking capable.
pub const MSI_FLAGS_MASKBIT: u16 = 1 << 8;

/// MSI-X capability: message control (16 bits at +2).
pub const MSIX_FLAGS: u16 = 0x02;
/// MSI-X control: table size minus one (bits 10:0).
pub const MSIX_FLAGS_QSIZE: u16 = 0x07ff;
/// MSI-X control: function mask.
pub const MSIX_FLAGS_MASKALL: u16 = 1 << 14;
/// MSI-X control: enable.
pub const MSIX_FLAGS_ENABLE: u16 = 1 << 15;
/// MSI-X table offset/BIR (32 bits at +4).
pub const MSIX_TABLE: u16 = 0x04;
/// MSI-X PBA offset/BIR (32 bits at +8).
pub const MSIX_PBA: u16 = 0x08;
/// Bytes per MSI-X table entry.
pub const MSIX_ENTRY_SIZE: u64 = 16;

/// PCIe capability: flags (16 bits at +2), port type in bits 7:4.
pub const EXP_FLAGS: u16 = 0x02;
/// PCIe capability: device capabilities (32 bits).
pub const EXP_DEVCAP: u16 = 0x04;
/// DevCap: the function supports Function Level Reset (PCIe 6.0 §7.5.3.3, bit 28).
pub const EXP_DEVCAP_FLR: u32 = 1 << 28;
/// PCIe capability: device control (16 bits).
pub const EXP_DEVCTL: u16 = 0x08;
/// DevCtl: Initiate Function Level Reset (PCIe 6.0 §7.5.3.4, bit 15; reads as 0).
pub const EXP_DEVCTL_BCR_FLR: u16 = 1 << 15;
/// PCIe capability: device capabilities 2 (32 bits).
pub const EXP_DEVCAP2: u16 = 0x24;
/// PCIe capability: device control 2 (16 bits).
pub const EXP_DEVCTL2: u16 = 0x28;
/// DevCap2: ARI forwarding supported.
pub const EXP_DEVCAP2_ARI: u32 = 1 << 5;
/// DevCtl2: ARI forwarding enable.
pub const EXP_DEVCTL2_ARI: u16 = 1 << 5;

/// PCIe device/port types (PCIe capability flags bits 7:4).
pub mod port {
    /// PCIe endpoint.
    pub const ENDPOINT: u8 = 0x0;
    /// Legacy endpoint.
    pub const LEGACY_ENDPOINT: u8 = 0x1;
    /// Root port of a root complex.
    pub const ROOT_PORT: u8 = 0x4;
    /// Upstream port of a switch.
    pub const UPSTREAM: u8 = 0x5;
    /// Downstream port of a switch.
    pub const DOWNSTREAM: u8 = 0x6;
    /// PCIe-to-PCI bridge.
    pub const PCI_BRIDGE: u8 = 0x7;
    /// PCI-to-PCIe bridge.
    pub const PCIE_BRIDGE: u8 = 0x8;
    /// Root complex integrated endpoint.
    pub const RC_ENDPOINT: u8 = 0x9;
    /// Root complex event collector.
    pub const RC_EVENT_COLLECTOR: u8 = 0xa;
}
