//! The `metaspatial-rl` command.

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so `metaspatial-rl … | head` would panic on the closed pipe; exit
    // quietly instead, as command-line tools do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    metaspatial_rl::cli::main()
}
