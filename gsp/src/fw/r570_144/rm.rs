//! RM object classes and their alloc/control parameter structs (570.144).
