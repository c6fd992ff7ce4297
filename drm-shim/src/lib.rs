//! DRM-compatible front end: ioctl decoding, per-client handles, errno (no_std).
//!
//! (Being built: see the open issue for this crate.)
#![no_std]
#![deny(unsafe_code)]
