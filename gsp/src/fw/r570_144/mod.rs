//! Wire types of GSP firmware 570.144, written from the documented facts (OpenRM 570.144 headers,
//! pinned by its `gsp_abi_check.c`; nova-core `gsp/fw/r570_144`). OpenRM names are kept so they grep
//! against NVIDIA's sources. Every struct derives zerocopy traits and has its size and field offsets
//! pinned by compile-time asserts citing the source.
#![allow(non_camel_case_types, non_snake_case)]

pub mod args;
pub mod libos;
pub mod msgq;
pub mod registry;
pub mod rm;
pub mod rpc;
pub mod sequencer;
pub mod static_info;
pub mod sysinfo;
pub mod wpr;
