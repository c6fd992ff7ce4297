//! The GSP firmware xtask hands the system: NVIDIA's real files for the simulated GPU's chip
//! (`gsp-570.144.bin` and `bootloader-570.144.bin` from `nvidia/<chip>/gsp/`), when
//! `.ci/fetch-firmware` unpacked them into `target/firmware` (or `$GSP_FIRMWARE_DIR`), packed
//! the way the `gsp_fw` region holds them (`pd_programs::gsp::firmware`). `cargo xtask run`
//! gives the pack to the runtime with `--prefill gsp_fw=...`; without the files nothing is
//! prefilled and the GPU model writes its synthetic image into the empty region. The bring-up
//! log says which one booted.
use pd_programs::gsp::firmware::{self, FIRMWARE_VERSION};
use std::path::{Path, PathBuf};

/// Where `.ci/fetch-firmware` unpacks.
fn firmware_dir(root: &Path) -> PathBuf {
    std::env::var_os("GSP_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/firmware"))
}

/// Write the pack of the real firmware for the model's chip to `out`, zero-padded to `pad_to`
/// bytes if given (a Microkit prefill must fill its region); returns what was packed, or
/// `Ok(None)` when the files are not there.
///
/// # Errors
/// A file that cannot be read or written, or files that do not fit `gsp_fw`.
pub fn pack(root: &Path, out: &Path, pad_to: Option<usize>) -> Result<Option<String>, String> {
    let chip = pd_programs::gsp_model::CHIP.name();
    let dir = firmware_dir(root).join(format!("usr/lib/firmware/nvidia/{chip}/gsp"));
    let gsp = dir.join(format!("gsp-{FIRMWARE_VERSION}.bin"));
    let bootloader = dir.join(format!("bootloader-{FIRMWARE_VERSION}.bin"));
    if !gsp.is_file() || !bootloader.is_file() {
        return Ok(None);
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (g, b) = (read(&gsp)?, read(&bootloader)?);
    let capacity = pd_programs::sys::gsp::regions::GSP_FW.size;
    let mut buf = vec![0u8; usize::try_from(capacity).map_err(|e| e.to_string())?];
    let origin = format!("NVIDIA's nvidia/{chip}/gsp/gsp-{FIRMWARE_VERSION}.bin");
    let n = firmware::write(&mut buf, &g, &b, chip, &origin)
        .map_err(|e| format!("{}: {e}", gsp.display()))?;
    buf.truncate(pad_to.unwrap_or(n).max(n));
    std::fs::write(out, &buf).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(Some(format!(
        "{chip} GSP firmware {FIRMWARE_VERSION} from {}",
        dir.display()
    )))
}

/// The runtime arguments that prefill `gsp_fw` with the real firmware, or none (saying why on
/// stderr) when it is not there or cannot be packed.
pub fn prefill_args(root: &Path) -> Vec<String> {
    let out = root.join("target/gsp_fw.pack");
    match pack(root, &out, None) {
        Ok(Some(what)) => {
            eprintln!("xtask: gsp_fw: {what}");
            vec!["--prefill".into(), format!("gsp_fw={}", out.display())]
        }
        Ok(None) => {
            eprintln!(
                "xtask: gsp_fw: no {} GSP firmware {FIRMWARE_VERSION} fetched \
                 (.ci/fetch-firmware): the simulated GPU runs its synthetic image",
                pd_programs::gsp_model::CHIP.name()
            );
            Vec::new()
        }
        Err(e) => {
            eprintln!("xtask: gsp_fw: {e}; the simulated GPU runs its synthetic image");
            Vec::new()
        }
    }
}
