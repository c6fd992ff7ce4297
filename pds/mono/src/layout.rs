//! The one address space: every memory region of `system.xml` mapped once, at the address every
//! PD that maps it expects.
//!
//! PD code turns its regions into views at the declared `vaddr` (`pd_programs::regions`), so the
//! composition can only run unchanged if each region has a single vaddr across the PDs that map
//! it and no two regions overlap. [`check`] says where `system.xml` breaks that; [`map`] backs
//! each region with a memfd (hosted's, filled from its prefill file like the runtime does) mapped
//! read-write if any PD writes it. Nothing is enforced: that is the point of this composition.

use hosted::sys::memfd::{Mapping, Memfd, Prot};
use std::fmt;
use std::path::Path;
use sysxml::System;

/// Why the regions cannot share one address space, or could not be mapped.
#[derive(Debug)]
pub enum LayoutError {
    /// `pd` maps `region` at `vaddr`, but `other` maps it at `other_vaddr`.
    TwoAddresses {
        /// The region.
        region: String,
        /// A PD and its address for it.
        pd: String,
        /// That address.
        vaddr: u64,
        /// Another PD.
        other: String,
        /// Its different address.
        other_vaddr: u64,
    },
    /// Two regions overlap at their (single) addresses.
    Overlap {
        /// One region.
        a: String,
        /// The other.
        b: String,
    },
    /// A region's size or address does not fit this machine.
    TooLarge(String),
    /// A prefill file is unreadable or larger than its region.
    Prefill(String, String),
    /// The OS refused a memfd or a mapping (`EEXIST`: something else already lives there).
    Os(String, std::io::Error),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TwoAddresses {
                region,
                pd,
                vaddr,
                other,
                other_vaddr,
            } => write!(
                f,
                "region {region} is mapped at {vaddr:#x} in {pd} but at {other_vaddr:#x} in {other}: \
                 one address space needs one address per region"
            ),
            Self::Overlap { a, b } => write!(f, "regions {a} and {b} overlap in one address space"),
            Self::TooLarge(r) => write!(f, "region {r} does not fit this machine's address space"),
            Self::Prefill(r, why) => write!(f, "region {r}: {why}"),
            Self::Os(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// One region's place in the shared address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The region's name.
    pub name: String,
    /// Its one address.
    pub vaddr: u64,
    /// Its size.
    pub size: u64,
    /// Whether any PD maps it writable.
    pub writable: bool,
}

/// Where each mapped region goes (regions no PD maps are left out).
///
/// # Errors
/// The first region with two addresses, or the first two regions that overlap.
pub fn check(system: &System) -> Result<Vec<Placement>, LayoutError> {
    let mut placed: Vec<(Placement, &str)> = Vec::new();
    for pd in &system.pds {
        for m in &pd.maps {
            let size = system.region(&m.mr).map_or(0, |r| r.size);
            match placed.iter_mut().find(|(p, _)| p.name == m.mr) {
                Some((p, first)) if p.vaddr != m.vaddr => {
                    return Err(LayoutError::TwoAddresses {
                        region: m.mr.clone(),
                        pd: (*first).to_owned(),
                        vaddr: p.vaddr,
                        other: pd.name.clone(),
                        other_vaddr: m.vaddr,
                    })
                }
                Some((p, _)) => p.writable |= m.perms.w,
                None => placed.push((
                    Placement {
                        name: m.mr.clone(),
                        vaddr: m.vaddr,
                        size,
                        writable: m.perms.w,
                    },
                    &pd.name,
                )),
            }
        }
    }
    let mut out: Vec<Placement> = placed.into_iter().map(|(p, _)| p).collect();
    out.sort_by_key(|p| p.vaddr);
    for pair in out.windows(2) {
        if let [a, b] = pair {
            if a.vaddr.saturating_add(a.size) > b.vaddr {
                return Err(LayoutError::Overlap {
                    a: a.name.clone(),
                    b: b.name.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Map every region of `system` at its one address, for the rest of the process's life;
/// prefill paths are relative to `dir` (the directory of `system.xml`).
///
/// # Errors
/// A [`LayoutError`] from [`check`], or the region that could not be created, filled or mapped.
pub fn map(system: &System, dir: &Path) -> Result<Vec<Placement>, LayoutError> {
    let placements = check(system)?;
    for p in &placements {
        let too_large = || LayoutError::TooLarge(p.name.clone());
        let size = usize::try_from(p.size).map_err(|_| too_large())?;
        let vaddr = usize::try_from(p.vaddr).map_err(|_| too_large())?;
        let fd = Memfd::create(&format!("mono:{}", p.name), size)
            .map_err(|e| LayoutError::Os(format!("region {}", p.name), e))?;
        if let Some(path) = system.region(&p.name).and_then(|r| r.prefill_path.as_ref()) {
            let bad = |why: String| LayoutError::Prefill(p.name.clone(), why);
            let data = std::fs::read(dir.join(path))
                .map_err(|e| bad(format!("cannot read prefill {path}: {e}")))?;
            fd.write_at(0, &data).map_err(|_| {
                bad(format!(
                    "prefill {path} ({} bytes) does not fit",
                    data.len()
                ))
            })?;
        }
        let prot = Prot {
            read: true,
            write: p.writable,
            exec: false,
        };
        let mapping = Mapping::new(fd.fd(), size, prot, Some(vaddr)).map_err(|e| {
            LayoutError::Os(format!("mapping region {} at {:#x}", p.name, p.vaddr), e)
        })?;
        // The mapping outlives the descriptor; both stay for the process's life.
        mapping.leak();
        std::mem::forget(fd);
    }
    Ok(placements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(maps: &str) -> System {
        sysxml::parse(&format!(
            r#"<system>
                <memory_region name="a" size="0x2000" />
                <memory_region name="b" size="0x1000" />
                <protection_domain name="p" priority="10"><program_image path="p.elf" />{maps}</protection_domain>
                <protection_domain name="q" priority="20"><program_image path="q.elf" />
                    <map mr="a" vaddr="0x10000000" perms="rw" /></protection_domain>
            </system>"#
        ))
        .unwrap()
    }

    #[test]
    fn one_address_per_region_is_accepted_and_merges_rights() {
        let p = check(&system(r#"<map mr="a" vaddr="0x10000000" perms="r" /><map mr="b" vaddr="0x10002000" perms="r" />"#)).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name.as_str(), p[0].writable), ("a", true));
        assert_eq!((p[1].vaddr, p[1].writable), (0x1000_2000, false));
    }

    #[test]
    fn a_second_address_or_an_overlap_is_refused_by_name() {
        let e = check(&system(r#"<map mr="a" vaddr="0x20000000" perms="r" />"#)).unwrap_err();
        assert!(
            matches!(&e, LayoutError::TwoAddresses { region, pd, other, .. } if region == "a" && pd == "p" && other == "q"),
            "{e}"
        );
        let e = check(&system(r#"<map mr="b" vaddr="0x10001000" perms="r" />"#)).unwrap_err();
        assert!(
            matches!(&e, LayoutError::Overlap { a, b } if a == "a" && b == "b"),
            "{e}"
        );
    }

    #[test]
    fn the_repository_system_fits_one_address_space() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml");
        let sys = sysxml::load(&path).unwrap();
        let placements = check(&sys).unwrap();
        assert_eq!(
            placements.len(),
            sys.regions.len() - 1,
            "every region but pci_mmio is mapped"
        );
    }
}
