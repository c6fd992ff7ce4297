//! LibosMemoryRegionInitArgument (570.144).
