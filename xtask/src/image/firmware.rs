//! The `gsp_fw` region's content: NVIDIA's real GSP firmware when it was fetched.
//!
//! `gsp_fw` holds a firmware pack (`pd_programs::gsp::firmware`): the GSP ELF and the RISC-V
//! bootloader of the chip the GSP model simulates. When `.ci/fetch-firmware` has unpacked Debian's
//! firmware (into `$GSP_FIRMWARE_DIR`, default `target/firmware`), the image is built with that
//! pack as the region's Microkit `prefill_path`; otherwise the region starts empty and the model
//! PD writes its synthetic image into it at boot.

use std::path::{Path, PathBuf};

/// The firmware release the `gsp` crate speaks (`gsp::fw::current`).
const VERSION: &str = "570.144";

/// The region the pack goes into.
pub const REGION: &str = "gsp_fw";

/// Where `.ci/fetch-firmware` unpacked Debian's firmware.
fn firmware_dir(root: &Path) -> PathBuf {
    std::env::var_os("GSP_FIRMWARE_DIR").map_or_else(|| root.join("target/firmware"), PathBuf::from)
}

/// Write the pack of the real firmware for the model's chip into `dir/gsp_fw.pack`, zero-padded
/// to the region's `capacity` (Microkit 2.3.0's tool panics on a prefill that ends a page or more
/// before its region does); `Ok(None)` when the firmware is not there.
///
/// # Errors
/// A file that cannot be read or written, or a pack that does not fit the region.
pub fn pack(root: &Path, dir: &Path, capacity: u64) -> Result<Option<(PathBuf, String)>, String> {
    let chip = pd_programs::gsp_model::CHIP.name();
    let files = firmware_dir(root)
        .join("usr/lib/firmware/nvidia")
        .join(chip)
        .join("gsp");
    let gsp_path = files.join(format!("gsp-{VERSION}.bin"));
    let bootloader_path = files.join(format!("bootloader-{VERSION}.bin"));
    if !gsp_path.is_file() || !bootloader_path.is_file() {
        return Ok(None);
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (gsp, bootloader) = (read(&gsp_path)?, read(&bootloader_path)?);
    let capacity = usize::try_from(capacity).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; capacity];
    let origin = gsp_path.display().to_string();
    pd_programs::gsp::firmware::write(&mut buf, &gsp, &bootloader, chip, &origin)
        .map_err(|e| format!("the firmware of {chip} does not fit {REGION}: {e}"))?;
    let out = dir.join("gsp_fw.pack");
    std::fs::write(&out, &buf).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(Some((
        out,
        format!("{chip} firmware {VERSION} from {}", files.display()),
    )))
}
