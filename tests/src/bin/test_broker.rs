//! The broker binary, rebuilt inside the `tests` crate.
//!
//! Cargo only exposes `CARGO_BIN_EXE_<name>` to integration tests for binaries
//! of the same package, so this thin wrapper around [`broker::cli::run`] is what
//! the crash tests spawn and SIGKILL.

fn main() -> std::process::ExitCode {
    broker::cli::run()
}
