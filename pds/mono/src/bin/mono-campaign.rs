//! `mono-campaign [OPTIONS] SYSTEM.XML`: `mono` with fault injection (`mono::cli`), under a name
//! that a build without the feature never overwrites: the campaign's monolithic composition.

fn main() -> std::process::ExitCode {
    mono::cli::main()
}
