//! The GSP boot state machine (reference section 1), one traced state per step.

pub mod falcon;
