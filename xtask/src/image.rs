//! `cargo xtask image`, `qemu` and `test-image`: the seL4 Microkit image of `system.xml`.
//!
//! `image` builds every program image of `system.xml` from the seL4 workspace (`images/microkit`,
//! `-Zbuild-std` on rust-sel4's `*-sel4-minimal.json` targets, against the libsel4 headers of the
//! SDK named by `MICROKIT_SDK`), writes each child's warm restart entry into its parent's ELF,
//! merges the board's physical addresses (`images/<board>/board.xml`) into `system.xml`, and runs
//! the SDK's `microkit` tool on the result: `images/out/<board>/loader.img`.
//!
//! `qemu` builds and boots it with the board's QEMU command line, echoes the serial console and
//! exits with the demo's verdict. `test-image` boots it and checks the console step by step
//! (expect-style, like sDDF's CI); where the SDK or a toolchain with `rust-src` is missing it
//! prints `SKIPPED: <reason>` and succeeds, loudly, so a machine without them still passes CI.

mod bench;
mod boot;
mod campaign;
mod elf;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

pub use bench::run as bench;
pub use boot::{qemu, test_image};
pub use campaign::{prepare as prepare_campaign, session as campaign_session, Prepared};

/// A Microkit board this image supports.
#[derive(Debug)]
pub struct Board {
    /// The SDK's board name.
    pub name: &'static str,
    /// rust-sel4's target spec (`support/targets/<target>.json`) for its PDs.
    target: &'static str,
}

/// The boards, first the default.
pub const BOARDS: &[Board] = &[
    Board {
        name: "qemu_virt_aarch64",
        target: "aarch64-sel4-minimal",
    },
    Board {
        name: "x86_64_generic",
        target: "x86_64-sel4-minimal",
    },
];

/// What `image`, `qemu` and `test-image` were asked for.
#[derive(Debug)]
pub struct Options {
    /// The board.
    pub board: &'static Board,
    /// The SDK configuration (kernel and monitor): `debug` (serial console) or `release`.
    pub config: String,
    /// The injected fault: PD and the PPC it faults on (`--fault PD:N`, `--fault none`).
    pub fault: Option<(String, u64)>,
    /// Whether to prefill `gsp_fw` with NVIDIA's firmware when it was fetched (`--no-firmware`:
    /// never, the model's synthetic image).
    pub firmware: bool,
    /// Arguments after `--`, passed to QEMU.
    pub qemu_args: Vec<String>,
    /// Build the fault campaign's PD images (`fault-injection`, the campaign client as
    /// `client.elf`) in their own target directory; set by `cargo xtask faults --board B`.
    pub campaign: bool,
}

/// The demo's injected fault: the gpu PD faults while serving its 300th PPC, mid-workload.
const DEFAULT_FAULT: (&str, u64) = ("gpu", 300);

impl Options {
    /// Parse `[--board B] [--config C] [--fault PD:N|none] [--no-firmware] [-- QEMU ARGS]`.
    ///
    /// # Errors
    /// An unknown board, config or option.
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        let mut board = BOARDS.first().ok_or("no boards")?;
        let mut config = "debug".to_string();
        let mut qemu_args = Vec::new();
        let mut fault = Some((DEFAULT_FAULT.0.to_string(), DEFAULT_FAULT.1));
        let mut firmware = true;
        let mut it = args.iter();
        while let Some(&arg) = it.next() {
            match arg {
                "--board" => {
                    let name = it.next().ok_or("--board needs a board name")?;
                    board = BOARDS.iter().find(|b| b.name == *name).ok_or_else(|| {
                        let names: Vec<_> = BOARDS.iter().map(|b| b.name).collect();
                        format!("unknown board {name}; boards: {}", names.join(", "))
                    })?;
                }
                "--config" => {
                    let c = it.next().ok_or("--config needs debug or release")?;
                    if !["debug", "release"].contains(c) {
                        return Err(format!("unknown config {c}; configs: debug, release"));
                    }
                    config = (*c).to_string();
                }
                "--fault" => {
                    let f = it.next().ok_or("--fault needs PD:N or none")?;
                    fault = match f.split_once(':') {
                        _ if *f == "none" => None,
                        Some((pd, n)) => match n.parse::<u64>() {
                            Ok(n) if n > 0 => Some((pd.to_string(), n)),
                            _ => return Err(format!("--fault {f}: N must be a PPC count from 1")),
                        },
                        None => return Err(format!("--fault {f}: expected PD:N or none")),
                    };
                }
                "--no-firmware" => firmware = false,
                "--" => qemu_args.extend(it.by_ref().map(|s| (*s).to_string())),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(Self {
            board,
            config,
            fault,
            firmware,
            qemu_args,
            campaign: false,
        })
    }

    /// `images/out/<board>`.
    fn out_dir(&self) -> PathBuf {
        super::workspace_root()
            .join("images/out")
            .join(self.board.name)
    }

    /// `images/out/<board>/loader.img`.
    pub fn loader_img(&self) -> PathBuf {
        self.out_dir().join("loader.img")
    }
}

/// What this machine has for the image build: the SDK and the toolchain to use.
#[derive(Debug)]
pub struct Prerequisites {
    /// `$MICROKIT_SDK`.
    pub sdk: PathBuf,
    /// The rustup toolchain for the seL4 workspace (`$SEL4_TOOLCHAIN`), or `None` for the one
    /// `images/microkit/rust-toolchain.toml` pins.
    toolchain: Option<String>,
}

impl Prerequisites {
    /// Find the SDK (`MICROKIT_SDK`, with the board and config built) and a toolchain that has
    /// `rust-src`, or say what is missing.
    ///
    /// # Errors
    /// A sentence naming what is missing, for `SKIPPED:` or an error message.
    pub fn find(opts: &Options) -> Result<Self, String> {
        let sdk = std::env::var_os("MICROKIT_SDK")
            .map(PathBuf::from)
            .ok_or("MICROKIT_SDK is not set (the Microkit SDK 2.3.0 directory)")?;
        let config_dir = sdk.join("board").join(opts.board.name).join(&opts.config);
        for needed in [
            sdk.join("bin/microkit"),
            config_dir.join("include"),
            config_dir.join("elf/initialiser.elf"),
        ] {
            if !needed.exists() {
                return Err(format!(
                    "the Microkit SDK at {} has no {} (board {}, config {})",
                    sdk.display(),
                    needed.strip_prefix(&sdk).unwrap_or(&needed).display(),
                    opts.board.name,
                    opts.config
                ));
            }
        }
        let toolchain = std::env::var("SEL4_TOOLCHAIN")
            .ok()
            .filter(|t| !t.is_empty());
        let prereq = Self { sdk, toolchain };
        let sysroot = prereq
            .cargo_like("rustc")
            .args(["--print", "sysroot"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .ok_or_else(|| {
                format!(
                    "the Rust toolchain {} is not installed (images/microkit needs a nightly with \
                     rust-src; or set SEL4_TOOLCHAIN to a rustup toolchain with rust-src)",
                    prereq.toolchain_name()
                )
            })?;
        if !sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
            return Err(format!(
                "the Rust toolchain {} has no rust-src (needed for -Zbuild-std)",
                prereq.toolchain_name()
            ));
        }
        Ok(prereq)
    }

    fn toolchain_name(&self) -> String {
        match &self.toolchain {
            Some(t) => t.clone(),
            None => format!(
                "{} (pinned in images/microkit/rust-toolchain.toml)",
                pinned_channel()
            ),
        }
    }

    /// `program [+toolchain]` run from `images/microkit`, with the environment of the outer cargo
    /// removed (it would pin the outer toolchain and target dir), never installing a toolchain.
    fn cargo_like(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        if let Some(t) = &self.toolchain {
            cmd.arg(format!("+{t}"));
        }
        cmd.current_dir(sel4_workspace())
            .env("RUSTUP_AUTO_INSTALL", "0")
            .env("RUSTC_BOOTSTRAP", "1");
        for var in [
            "RUSTUP_TOOLCHAIN",
            "CARGO",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC",
            "RUSTDOC",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_MANIFEST_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// The channel `images/microkit/rust-toolchain.toml` pins (`?` if it cannot be read).
fn pinned_channel() -> String {
    let file =
        std::fs::read_to_string(sel4_workspace().join("rust-toolchain.toml")).unwrap_or_default();
    file.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.split('"').nth(1))
        .next()
        .unwrap_or("?")
        .to_string()
}

/// `images/microkit`.
fn sel4_workspace() -> PathBuf {
    super::workspace_root().join("images/microkit")
}

/// `cargo xtask image`: build `images/out/<board>/loader.img`.
pub fn image(args: &[&str]) -> ExitCode {
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => return usage_error(&e),
    };
    match Prerequisites::find(&opts).and_then(|p| build(&opts, &p)) {
        Ok(img) => {
            println!("image: {}", img.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask image: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(e: &str) -> ExitCode {
    eprintln!(
        "xtask: {e}\nusage: cargo xtask image|qemu|test-image [--board BOARD] \
         [--config debug|release] [--fault PD:N|none] [--no-firmware] [-- QEMU ARGS]"
    );
    ExitCode::from(2)
}

/// Build the image; returns the path of `loader.img`.
///
/// # Errors
/// What failed, in a sentence: the PD build, a missing program image, the board file, the
/// restart-table patch or the Microkit tool.
pub fn build(opts: &Options, prereq: &Prerequisites) -> Result<PathBuf, String> {
    build_system(opts, prereq, board_system(opts.board)?, &opts.out_dir())
}

/// Build the image of `system` (merged with the board's addresses) in `out`; returns the path
/// of its `loader.img`.
///
/// # Errors
/// As [`build`].
fn build_system(
    opts: &Options,
    prereq: &Prerequisites,
    mut system: sysxml::System,
    out: &Path,
) -> Result<PathBuf, String> {
    let root = super::workspace_root();
    let target_json = rust_sel4_targets(prereq)?.join(format!("{}.json", opts.board.target));
    let flavour = if opts.campaign { "-faults" } else { "" };
    let target_dir = sel4_workspace()
        .join("target")
        .join(format!("{}-{}{flavour}", opts.board.name, opts.config));
    let include = prereq
        .sdk
        .join("board")
        .join(opts.board.name)
        .join(&opts.config)
        .join("include");
    println!(
        "image: building the PDs for {} ({}) with {}",
        opts.board.name,
        opts.config,
        prereq.toolchain_name()
    );
    run(prereq
        .cargo_like("cargo")
        .args(["build", "--release", "--workspace", "--target"])
        .arg(&target_json)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(
            opts.campaign
                .then_some(["--features", "pd-client/campaign"])
                .into_iter()
                .flatten(),
        )
        .env("SEL4_INCLUDE_DIRS", &include))?;
    let elf_dir = target_dir.join(opts.board.target).join("release");

    let images = out.join("elf");
    std::fs::create_dir_all(&images)
        .map_err(|e| format!("cannot create {}: {e}", images.display()))?;
    for pd in &system.pds {
        let from = elf_dir.join(&pd.program_image);
        std::fs::copy(&from, images.join(&pd.program_image)).map_err(|e| {
            format!(
                "PD {} needs program image {}: {e} (is there a crate for it in images/microkit/pds?)",
                pd.name,
                from.display()
            )
        })?;
    }
    elf::patch_restart_entries(&system, &images)?;
    if let Some((pd, call)) = &opts.fault {
        elf::inject_fault(&system, &images, pd, *call)?;
        println!("image: {pd} will fault on its PPC #{call} (--fault none to build without)");
    }

    // gsp_fw: NVIDIA's firmware when `.ci/fetch-firmware` got it, padded to the whole region
    // (Microkit 2.3.0's tool panics on a prefill that ends a page or more before its region);
    // otherwise empty, and the GSP model writes its synthetic image into it at boot.
    let region = system
        .regions
        .iter_mut()
        .find(|r| r.name == "gsp_fw")
        .ok_or("system.xml has no gsp_fw region")?;
    let pack_file = "gsp_fw.pack";
    let pack = if opts.firmware {
        let size = usize::try_from(region.size).map_err(|e| e.to_string())?;
        super::firmware::pack(&root, &images.join(pack_file), Some(size))?
    } else {
        None
    };
    match pack {
        Some(what) => {
            println!("image: gsp_fw prefilled with {what}");
            region.prefill_path = Some(pack_file.to_string());
        }
        None => println!(
            "image: gsp_fw starts empty (no NVIDIA firmware fetched by .ci/fetch-firmware, or \
             --no-firmware): the GSP model writes its synthetic image into it at boot"
        ),
    }

    let sdf = out.join("system.system");
    std::fs::write(&sdf, system.to_sdf())
        .map_err(|e| format!("cannot write {}: {e}", sdf.display()))?;
    let img = out.join("loader.img");
    run(&mut microkit(opts, prereq, out, &images))?;
    Ok(img)
}

/// The Microkit tool's command: `out/system.system` with the program images in `images` into
/// `out/loader.img` (and `out/report.txt`).
fn microkit(opts: &Options, prereq: &Prerequisites, out: &Path, images: &Path) -> Command {
    let mut cmd = Command::new(prereq.sdk.join("bin/microkit"));
    cmd.arg(out.join("system.system"))
        .arg("--search-path")
        .arg(images)
        .args(["--board", opts.board.name, "--config", &opts.config, "-o"])
        .arg(out.join("loader.img"))
        .arg("-r")
        .arg(out.join("report.txt"));
    cmd
}

/// `system.xml` with `board`'s physical addresses merged in (`images/<board>/board.xml`).
///
/// # Errors
/// Either file cannot be read, or does not validate (line-numbered).
pub fn board_system(board: &Board) -> Result<sysxml::System, String> {
    let root = super::workspace_root();
    let mut system = sysxml::load(&root.join("system.xml")).map_err(|e| e.to_string())?;
    let board_xml = root.join("images").join(board.name).join("board.xml");
    let board_text = std::fs::read_to_string(&board_xml)
        .map_err(|e| format!("cannot read {}: {e}", board_xml.display()))?;
    sysxml::merge_board(&mut system, &board_text)
        .map_err(|e| format!("{} ({})", e, board_xml.display()))?;
    Ok(system)
}

/// rust-sel4's `support/targets` in cargo's checkout of the git dependency.
fn rust_sel4_targets(prereq: &Prerequisites) -> Result<PathBuf, String> {
    let output = prereq
        .cargo_like("cargo")
        .args(["metadata", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed in images/microkit:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json = String::from_utf8_lossy(&output.stdout);
    let manifest = json_strings(&json, "manifest_path")
        .into_iter()
        .find(|p| p.ends_with("/crates/sel4-microkit/Cargo.toml"))
        .ok_or("cargo metadata does not list rust-sel4's sel4-microkit")?;
    let repo = Path::new(&manifest)
        .ancestors()
        .nth(3)
        .ok_or("unexpected sel4-microkit manifest path")?;
    Ok(repo.join("support/targets"))
}

/// Every string value of `"key":"..."` in `json` (enough for cargo metadata's paths, which are
/// plain strings; escapes other than `\\` and `\"` are kept as written).
fn json_strings(json: &str, key: &str) -> Vec<String> {
    let pattern = format!("\"{key}\":\"");
    let mut values = Vec::new();
    for (at, _) in json.match_indices(&pattern) {
        let mut value = String::new();
        let mut chars = json.get(at + pattern.len()..).unwrap_or("").chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => value.extend(chars.next()),
                c => value.push(c),
            }
        }
        values.push(value);
    }
    values
}

/// Run `cmd`, inheriting the terminal.
fn run(cmd: &mut Command) -> Result<(), String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let args: Vec<_> = cmd.get_args().map(OsStr::to_string_lossy).collect();
        Err(format!("`{name} {}` failed ({status})", args.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_board_config_and_qemu_args() {
        let o = Options::parse(&[
            "--board",
            "x86_64_generic",
            "--config",
            "release",
            "--",
            "-icount",
            "shift=0",
        ])
        .unwrap();
        assert_eq!(
            (o.board.name, o.config.as_str()),
            ("x86_64_generic", "release")
        );
        assert_eq!(o.qemu_args, ["-icount", "shift=0"]);
        let d = Options::parse(&[]).unwrap();
        assert_eq!(
            (d.board.name, d.config.as_str()),
            ("qemu_virt_aarch64", "debug")
        );
        assert_eq!(d.fault, Some(("gpu".to_string(), 300)));
        let f = Options::parse(&["--fault", "pci:7"]).unwrap();
        assert_eq!(f.fault, Some(("pci".to_string(), 7)));
        assert_eq!(Options::parse(&["--fault", "none"]).unwrap().fault, None);
        assert!(Options::parse(&["--fault", "pci:0"]).is_err());
        assert!(Options::parse(&["--fault", "pci"]).is_err());
        assert!(d.firmware && !Options::parse(&["--no-firmware"]).unwrap().firmware);
        assert!(Options::parse(&["--board", "pc"])
            .unwrap_err()
            .contains("unknown board pc"));
        assert!(Options::parse(&["--config", "fast"]).is_err());
        assert!(Options::parse(&["--frobnicate"]).is_err());
    }

    #[test]
    fn every_board_file_merges_into_system_xml() {
        for board in BOARDS {
            let system = board_system(board).unwrap();
            let ecam = system.region("pci_ecam").and_then(|r| r.phys_addr);
            assert!(
                ecam.is_some(),
                "{}: pci_ecam has no physical address",
                board.name
            );
            if board.name.starts_with("x86_64") {
                // The Microkit tool cannot place a region a PD asks the address of on x86_64.
                for pd in &system.pds {
                    for setvar in &pd.setvars {
                        let mr = system.region(&setvar.region_paddr).unwrap();
                        assert!(
                            mr.phys_addr.is_some(),
                            "{}: {} needs a phys_addr",
                            board.name,
                            mr.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_pinned_channel_is_read_from_rust_toolchain_toml() {
        assert!(
            pinned_channel().starts_with("nightly-"),
            "{}",
            pinned_channel()
        );
    }

    #[test]
    fn json_strings_finds_every_value_and_unescapes() {
        let json = r#"{"packages":[{"manifest_path":"/a/b/Cargo.toml"},{"manifest_path":"/c/\"q\"/Cargo.toml","x":1}]}"#;
        let all = json_strings(json, "manifest_path");
        assert_eq!(all, ["/a/b/Cargo.toml", "/c/\"q\"/Cargo.toml"]);
    }
}
