//! Radix3 map over the firmware image pages.
