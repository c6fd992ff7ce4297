//! `hosted SYSTEM.XML`: run the system with the product's PD programs (`cargo xtask run`).
fn main() -> std::process::ExitCode {
    hosted::main(pd_programs::PROGRAMS)
}
