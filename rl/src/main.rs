//! The `metaspatial-rl` command.

fn main() -> std::process::ExitCode {
    metaspatial_rl::cli::main()
}
