//! Benchmarks live in the benches folder; this crate has no library code.
