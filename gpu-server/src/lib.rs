//! gpu-server (no_std): owns the GPU's resources once the GSP is up. (Being built.)
#![no_std]
#![deny(unsafe_code)]

pub mod pt;
pub mod vm;
