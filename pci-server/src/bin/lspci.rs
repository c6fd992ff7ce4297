//! `cargo xtask lspci FILE...`: decode saved `lspci -xxx`/`-xxxx` dumps and print the same table
//! the PCI server logs at bring-up.
//!
//! Each function is replayed on the in-memory device model at the address the dump shows and
//! probed exactly as the server probes real hardware (capability walks, BAR sizing, bridge
//! windows). A dump holds current register values, not BAR sizes: where the input also holds
//! lspci `-v` decode lines (`Region 1: ... [size=256M]`) those sizes are used; otherwise a BAR's
//! size is the largest its current address alignment allows, and a note says so.
use pci_server::assign::Windows;
use pci_server::dump::{self, DumpFunction};
use pci_server::emul::{EmuFunction, Slot, Topology};
use pci_server::probe::{self, Function};
use pci_server::table;
use std::process::ExitCode;

fn decode(d: &DumpFunction<'_>) -> Result<Function, String> {
    let bdf = d.bdf.unwrap_or_default();
    let f = EmuFunction::from_dump(d.data(), &d.sizes).map_err(|e| format!("{bdf}: {e}"))?;
    let mut t: Box<Topology<1>> = Box::default();
    t.add(Slot::At(bdf), f).map_err(|e| format!("{bdf}: {e}"))?;
    match probe::probe(t.as_mut(), bdf) {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(format!("{bdf}: vendor id reads as absent")),
        Err(e) => Err(format!("{bdf}: {e}")),
    }
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!(
            "usage: cargo xtask lspci FILE...   (lspci -xxx or -xxxx output, optionally with -v)"
        );
        return ExitCode::from(2);
    }
    let mut failed = false;
    let mut guessed = 0;
    let mut out = String::new();
    for path in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("lspci: {path}: {e}");
                failed = true;
                continue;
            }
        };
        let mut functions = Vec::new();
        for item in dump::parse(&text) {
            match item.map_err(|e| e.to_string()).and_then(|d| {
                if d.sizes.bars.iter().all(Option::is_none) {
                    guessed += 1;
                }
                decode(&d)
            }) {
                Ok(f) => functions.push(f),
                Err(e) => {
                    eprintln!("lspci: {path}: {e}");
                    failed = true;
                }
            }
        }
        if functions.is_empty() {
            eprintln!("lspci: {path}: no function found");
            failed = true;
        }
        if table::write_table(&mut out, &functions, &Windows::default()).is_err() {
            failed = true;
        }
    }
    print!("{out}");
    if guessed > 0 {
        println!("# {guessed} function(s) had no lspci -v size lines: their BAR sizes are the largest their addresses' alignment allows");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
