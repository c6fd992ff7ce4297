//! `isolated [OPTIONS] SYSTEM.XML`: the hosted runtime (one process per PD, `system.xml`
//! enforced; options as `hosted --help`) with the fault campaign's program table
//! (`mono::campaign::programs`): the isolated composition of the campaign. The PDs run this same
//! binary (`--pd ...`), so they find the same table.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The runtime stamps the plan's epoch; its PDs inherit the stamped plan (and keep it).
    mono::campaign::stamp_epoch();
    hosted::main(&mono::campaign::programs())
}
