//! `bench-isolated SYSTEM.XML`: the hosted runtime (one process per PD, `system.xml` enforced)
//! running the bench client. Its PDs re-run this binary (`--pd ...`), so they find the same table.
use std::process::ExitCode;

fn main() -> ExitCode {
    hosted::main(&pd_bench::programs())
}
