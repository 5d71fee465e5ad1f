//! The `monchero` binary; everything is in the library (`lib.rs`).

fn main() -> std::process::ExitCode {
    monchero_agent::main()
}
