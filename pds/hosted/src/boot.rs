//! What the runtime tells a PD process at exec: its name, program, descriptors and their roles, as
//! command-line arguments (`/proc/self/exe --pd NAME ...`). The PD trusts these (the runtime is its
//! parent and wrote them), but parses them without panicking anyway.

use crate::sys::memfd::Prot;
use crate::wait::Spins;
use std::fmt;
use std::os::fd::RawFd;

/// A region to map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Descriptor of the region's memfd (read-only for `r` maps).
    pub fd: RawFd,
    /// Where to map it.
    pub vaddr: usize,
    /// Its size.
    pub size: usize,
    /// Its rights.
    pub prot: Prot,
    /// Its `setvar_vaddr` symbol in system.xml, if any (external slots tell it to the process).
    pub symbol: Option<String>,
}

/// A channel end of the PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The PD's channel id.
    pub id: u8,
    /// Descriptor of the channel page.
    pub fd: RawFd,
    /// Which end of the page is this PD's (0 or 1, as in system.xml).
    pub end: u8,
    /// This PD may call the other end (`pp="true"` on its end).
    pub pp: bool,
    /// This PD may notify the other end.
    pub notify: bool,
    /// The other end may call this PD (it serves PPCs on this channel).
    pub serves: bool,
    /// The other PD's name, for log lines.
    pub peer: String,
}

/// Everything a PD process needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootSpec {
    /// The PD's name.
    pub name: String,
    /// Its `program_image`, the key into the program table.
    pub image: String,
    /// Descriptor of its control page.
    pub control: RawFd,
    /// Descriptor of its eventfd towards the runtime.
    pub doorbell: RawFd,
    /// Spin budgets before blocking.
    pub spins: Spins,
    /// Its maps.
    pub maps: Vec<MapSpec>,
    /// Its channels.
    pub channels: Vec<ChannelSpec>,
    /// Its children: (child id, name).
    pub children: Vec<(u8, String)>,
    /// The listening socket of an external client slot (`crate::external`).
    pub external: Option<RawFd>,
}

/// A malformed boot argument (a runtime bug, or someone starting a PD by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootError(String);

impl BootError {
    /// A channel id out of range.
    pub fn channel(id: u8) -> Self {
        Self(format!("channel id {id} out of range"))
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad PD arguments: {}", self.0)
    }
}

impl std::error::Error for BootError {}

fn perms(p: Prot) -> String {
    let mut s = String::new();
    for (set, c) in [(p.read, 'r'), (p.write, 'w'), (p.exec, 'x')] {
        if set {
            s.push(c);
        }
    }
    s
}

impl BootSpec {
    /// The arguments that [`BootSpec::parse`] reads back; the first is `--pd`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--pd".into(),
            self.name.clone(),
            "--image".into(),
            self.image.clone(),
            "--control".into(),
            self.control.to_string(),
            "--doorbell".into(),
            self.doorbell.to_string(),
            "--spin-ns".into(),
            self.spins.idle.ns.to_string(),
            "--call-spin-ns".into(),
            self.spins.call.ns.to_string(),
        ];
        for m in &self.maps {
            a.push("--map".into());
            a.push(format!(
                "{},{:#x},{:#x},{}{}",
                m.fd,
                m.vaddr,
                m.size,
                perms(m.prot),
                m.symbol.as_ref().map_or(String::new(), |s| format!(",{s}"))
            ));
        }
        for c in &self.channels {
            let flags: String = [(c.pp, 'p'), (c.notify, 'n'), (c.serves, 's')]
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, ch)| *ch)
                .collect();
            a.push("--channel".into());
            a.push(format!("{},{},{},{flags},{}", c.id, c.fd, c.end, c.peer));
        }
        for (id, name) in &self.children {
            a.push("--child".into());
            a.push(format!("{id},{name}"));
        }
        if let Some(fd) = self.external {
            a.push("--external".into());
            a.push(fd.to_string());
        }
        a
    }

    /// Parse the arguments after the program name.
    ///
    /// # Errors
    /// A [`BootError`] naming the bad argument.
    pub fn parse(args: &[String]) -> Result<Self, BootError> {
        let mut spec = Self::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| BootError(format!("{flag} needs a value")))?;
            let bad = || BootError(format!("{flag} {value}"));
            match flag.as_str() {
                "--pd" => spec.name.clone_from(value),
                "--image" => spec.image.clone_from(value),
                "--control" => spec.control = value.parse().map_err(|_| bad())?,
                "--doorbell" => spec.doorbell = value.parse().map_err(|_| bad())?,
                "--spin-ns" => spec.spins.idle.ns = value.parse().map_err(|_| bad())?,
                "--call-spin-ns" => spec.spins.call.ns = value.parse().map_err(|_| bad())?,
                "--external" => spec.external = Some(value.parse().map_err(|_| bad())?),
                "--map" => spec.maps.push(parse_map(value).ok_or_else(bad)?),
                "--channel" => spec.channels.push(parse_channel(value).ok_or_else(bad)?),
                "--child" => {
                    let (id, name) = value.split_once(',').ok_or_else(bad)?;
                    spec.children
                        .push((id.parse().map_err(|_| bad())?, name.to_owned()));
                }
                _ => return Err(BootError(format!("unknown argument {flag}"))),
            }
        }
        if spec.name.is_empty() || spec.image.is_empty() {
            return Err(BootError("--pd and --image are required".into()));
        }
        Ok(spec)
    }
}

fn hex(s: &str) -> Option<usize> {
    usize::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

fn parse_map(v: &str) -> Option<MapSpec> {
    let mut f = v.split(',');
    let fd = f.next()?.parse().ok()?;
    let vaddr = hex(f.next()?)?;
    let size = hex(f.next()?)?;
    let p = f.next()?;
    let prot = Prot {
        read: p.contains('r'),
        write: p.contains('w'),
        exec: p.contains('x'),
    };
    let symbol = f.next().map(str::to_owned);
    f.next().is_none().then_some(MapSpec {
        fd,
        vaddr,
        size,
        prot,
        symbol,
    })
}

fn parse_channel(v: &str) -> Option<ChannelSpec> {
    let mut f = v.splitn(5, ',');
    let id = f.next()?.parse().ok()?;
    let fd = f.next()?.parse().ok()?;
    let end = f.next()?.parse().ok().filter(|e| *e < 2)?;
    let flags = f.next()?;
    let peer = f.next()?.to_owned();
    Some(ChannelSpec {
        id,
        fd,
        end,
        pp: flags.contains('p'),
        notify: flags.contains('n'),
        serves: flags.contains('s'),
        peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let spec = BootSpec {
            name: "gpu".into(),
            image: "gpu.elf".into(),
            control: 3,
            doorbell: 4,
            spins: Spins {
                idle: crate::wait::Spin { ns: 20_000 },
                call: crate::wait::Spin { ns: 300_000 },
            },
            maps: vec![MapSpec {
                fd: 5,
                vaddr: 0x2000_0000,
                size: 0x1000,
                prot: Prot {
                    read: true,
                    write: false,
                    exec: false,
                },
                symbol: Some("status_vaddr".into()),
            }],
            channels: vec![ChannelSpec {
                id: 4,
                fd: 6,
                end: 1,
                pp: false,
                notify: true,
                serves: true,
                peer: "drm".into(),
            }],
            children: vec![(1, "pci".into())],
            external: Some(7),
        };
        let args = spec.to_args();
        assert_eq!(args.first().map(String::as_str), Some("--pd"));
        assert_eq!(BootSpec::parse(&args), Ok(spec));
    }

    #[test]
    fn malformed_arguments_are_refused_by_name() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = BootSpec::parse(&args(&["--pd", "x", "--image", "y", "--map", "3,0x10"]));
        assert_eq!(e, Err(BootError("--map 3,0x10".into())));
        let e = BootSpec::parse(&args(&[
            "--pd",
            "x",
            "--image",
            "y",
            "--channel",
            "1,2,7,p,z",
        ]));
        assert!(e.is_err());
        assert!(BootSpec::parse(&args(&["--pd", "x"])).is_err());
        assert!(BootSpec::parse(&args(&["--pd"])).is_err());
        assert!(BootSpec::parse(&args(&["--bogus", "1"])).is_err());
    }
}
