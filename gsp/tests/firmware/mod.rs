//! Finding and loading the real firmware `.ci/fetch-firmware` unpacked (shared by the
//! `real_firmware` tests and the `fw` bench).
#![allow(dead_code)]

use gsp::elf::GspImage;
use std::path::{Path, PathBuf};
use zerocopy::IntoBytes;

/// One GSP ELF image, read into an 8-byte-aligned buffer.
pub struct Image {
    pub path: PathBuf,
    words: Vec<u64>,
    len: usize,
    /// Its `.fwversion`.
    pub version: String,
    /// `tu10x` or `ga10x`, from its signature sections.
    pub family: &'static str,
}

impl Image {
    pub fn bytes(&self) -> &[u8] {
        &self.words.as_bytes()[..self.len]
    }
    pub fn parse(&self) -> GspImage<'_> {
        GspImage::parse(self.bytes()).unwrap()
    }
}

/// Everything found under the firmware directory.
pub struct Firmware {
    pub dir: PathBuf,
    /// GSP ELF images, each file once, by its real path (symlinks resolved).
    pub images: Vec<Image>,
    /// `BinHdr` blobs (`booter_*`, `bootloader-*`) by path.
    pub blobs: Vec<(PathBuf, Vec<u8>)>,
}

/// `$GSP_FIRMWARE_DIR`, else the workspace's `target/firmware`.
pub fn firmware_dir() -> PathBuf {
    std::env::var_os("GSP_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/firmware"))
}

/// Report a missing piece: loud locally, fatal in CI. Written straight to stderr, past the test
/// harness's output capture, so a passing-but-skipped test still shows it.
pub fn missing(what: &str) {
    use std::io::Write;
    let msg = format!(
        "SKIPPED: {what} not found under {} (run .ci/fetch-firmware)",
        firmware_dir().display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI requires the real firmware");
    }
    // Once per message per process, not once per test.
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&msg) {
        let _ = writeln!(std::io::stderr(), "\n*** {msg} ***");
        said.push(msg);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".apt") {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "bin") {
            out.push(p);
        }
    }
}

fn read_aligned(path: &Path) -> Option<(Vec<u64>, usize)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let len = usize::try_from(f.metadata().ok()?.len()).ok()?;
    let mut words = vec![0u64; len.div_ceil(8)];
    f.read_exact(&mut words.as_mut_bytes()[..len]).ok()?;
    Some((words, len))
}

impl Firmware {
    /// Load every GSP image and blob, or report them missing and return `None`.
    pub fn load() -> Option<Self> {
        let dir = firmware_dir();
        let mut files = Vec::new();
        walk(&dir, &mut files);
        files.sort();
        let mut canonical = std::collections::BTreeSet::new();
        let mut images = Vec::new();
        let mut blobs = Vec::new();
        for path in files {
            let name = path.file_name()?.to_string_lossy().into_owned();
            if name.starts_with("gsp") {
                // Per-chip files are often links to another chip's image: keep each file once,
                // under its real path.
                let path = std::fs::canonicalize(&path).ok()?;
                if !canonical.insert(path.clone()) {
                    continue;
                }
                let Some((words, len)) = read_aligned(&path) else {
                    continue;
                };
                let bytes = &words.as_bytes()[..len];
                let Ok(img) = GspImage::parse(bytes) else {
                    continue;
                };
                let version = img.version().to_string();
                let family = if img.section(".fwsignature_tu10x").ok().flatten().is_some() {
                    "tu10x"
                } else {
                    "ga10x"
                };
                images.push(Image {
                    path,
                    words,
                    len,
                    version,
                    family,
                });
            } else if name.starts_with("booter_") || name.starts_with("bootloader-") {
                blobs.push((path.clone(), std::fs::read(&path).ok()?));
            }
        }
        if images.is_empty() {
            missing("GSP firmware images");
            return None;
        }
        Some(Self { dir, images, blobs })
    }

    /// The blob whose path ends with `suffix` (e.g. `tu102/gsp/bootloader-570.144.bin`).
    pub fn blob(&self, suffix: &str) -> Option<&[u8]> {
        self.blobs
            .iter()
            .find(|(p, _)| p.to_string_lossy().ends_with(suffix))
            .map(|(_, b)| b.as_slice())
    }
}
