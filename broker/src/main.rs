//! `broker`: the message broker binary. See `broker --help`.

fn main() -> std::process::ExitCode {
    broker::cli::run()
}
