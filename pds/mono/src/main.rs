//! `mono [OPTIONS] SYSTEM.XML`: every PD of the system in one process (`mono::cli`).

fn main() -> std::process::ExitCode {
    mono::cli::main()
}
