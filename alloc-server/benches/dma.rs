//! Placeholder until the bench lands in this commit series.
fn main() {}
