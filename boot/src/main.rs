//! Host-side launcher.
fn main() {}
