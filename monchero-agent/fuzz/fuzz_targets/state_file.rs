//! Arbitrary bytes as `STATE_DIR/state.json`: decoded as the daemon does at
//! start and `status` does with the daemon stopped, then used the way
//! they use it. A torn, edited or foreign file must be refused (and moved
//! aside by the daemon), never crash either of them.
//!
//! Run with `cargo fuzz run state_file -s none` (stable) from monchero-agent/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    monchero_agent::fuzzing::state_file(data);
});
