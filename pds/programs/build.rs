//! Generates `$OUT_DIR/sys.rs` (included by `src/sys.rs`) from the workspace's `system.xml`, so PD
//! code names channels, children and regions, never numbers. A description that does not validate
//! fails the build with the element and line at fault.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let system_xml = manifest_dir.join("../../system.xml");
    println!("cargo:rerun-if-changed={}", system_xml.display());
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("pd-programs: OUT_DIR is not set; run through cargo");
        return ExitCode::FAILURE;
    };
    let generated = sysxml::load(&system_xml).and_then(|sys| sysxml::codegen::generate(&sys));
    let code = match generated {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}\n  (in {})", system_xml.display());
            return ExitCode::FAILURE;
        }
    };
    let out = out_dir.join("sys.rs");
    if let Err(e) = std::fs::write(&out, code) {
        eprintln!("pd-programs: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
