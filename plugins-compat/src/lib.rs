//! Conformance tests against real monitoring-plugins live in `tests/`; this crate has no library code.
