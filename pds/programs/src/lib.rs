//! One thin entry point per PD. (Being built: issue 3.)
#![no_std]

pub mod sys;
