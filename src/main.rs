//! The `leadgate` binary.

fn main() -> std::process::ExitCode {
    leadgate::cli::run()
}
