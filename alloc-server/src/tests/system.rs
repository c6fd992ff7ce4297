//! The shipped policy against the shipped `system.xml`, and a server built with both.

use super::*;

const SYSTEM: &str = include_str!("../../../system.xml");

/// The value of the attribute `name="..."` in `s` (a whole attribute name, not a suffix).
fn attr<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let key = std::format!("{name}=\"");
    let at = s
        .match_indices(&key)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || s[..i].ends_with(' '))?;
    s[at + key.len()..].split('"').next()
}

/// (region, size) of every `*_dma` region.
fn dma_regions() -> Vec<(&'static str, u64)> {
    SYSTEM
        .lines()
        .filter(|l| l.contains("<memory_region"))
        .filter_map(|l| Some((attr(l, "name")?, attr(l, "size")?)))
        .filter(|(n, _)| n.ends_with("_dma"))
        .map(|(n, s)| {
            (
                n,
                u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
            )
        })
        .collect()
}

/// The PDs that map `region`, in document order.
fn mappers(region: &str) -> Vec<&'static str> {
    let mut pd = "";
    let mut out = Vec::new();
    for l in SYSTEM.lines() {
        if l.contains("<protection_domain") {
            pd = attr(l, "name").unwrap();
        } else if l.contains("<map ") && attr(l, "mr") == Some(region) {
            out.push(pd);
        }
    }
    out
}

/// Whether `caller` has a channel end with `pp="true"` whose other end is `alloc`.
fn calls_alloc(caller: &str) -> bool {
    SYSTEM.lines().filter(|l| l.contains("<channel>")).any(|l| {
        let ends: Vec<&str> = l.split("<end ").skip(1).collect();
        ends.len() == 2
            && ends.iter().any(|e| attr(e, "pd") == Some("alloc"))
            && ends
                .iter()
                .any(|e| attr(e, "pd") == Some(caller) && attr(e, "pp") == Some("true"))
    })
}

/// The owner of a pool: the PD mapping it that is neither alloc nor the device model.
fn owner_of(region: &str) -> &'static str {
    let m = mappers(region);
    let owners: Vec<_> = m
        .iter()
        .filter(|&&p| p != "alloc" && p != "gsp_model")
        .collect();
    assert_eq!(owners.len(), 1, "{region} mapped by {m:?}");
    assert!(
        m.contains(&"alloc") && m.contains(&"gsp_model"),
        "{region} mapped by {m:?}"
    );
    owners[0]
}

#[test]
fn the_policy_matches_system_xml() {
    let regions = dma_regions();
    assert_eq!(regions.len(), 5);
    let pages: u64 = regions.iter().map(|r| r.1 / PAGE).sum();
    assert!(pages <= ARENA_PAGES as u64, "{pages} pages of pools");
    assert!(
        policy::CLIENTS
            .iter()
            .map(|c| c.max_buffers as usize)
            .sum::<usize>()
            <= MAX_BUFFERS
    );
    for (region, size) in &regions {
        let owner = owner_of(region);
        let spec = policy::CLIENTS.iter().find(|c| c.name == owner).unwrap();
        assert_eq!(spec.quota_bytes, *size, "{owner}'s quota is its pool");
    }
    for g in policy::GRANTS {
        assert!(
            regions.iter().any(|r| r.0 == g.pool),
            "{} is no DMA region",
            g.pool
        );
        assert!(
            calls_alloc(g.caller),
            "{} has no channel to alloc",
            g.caller
        );
        // A caller maps what it owns; a delegate must not map the pool it allocates in.
        let maps = mappers(g.pool).contains(&g.caller);
        assert_eq!(
            maps,
            owner_of(g.pool) == g.caller,
            "{} and {}",
            g.caller,
            g.pool
        );
    }
}

#[test]
fn the_shipped_policy_builds_over_full_size_pools() {
    let regions = dma_regions();
    let mut mem: Vec<Vec<u8>> = regions.iter().map(|r| vec![0u8; r.1 as usize]).collect();
    let specs: Vec<PoolSpec> = regions
        .iter()
        .zip(mem.iter_mut())
        .zip(0u64..)
        .map(|((&(name, _), m), i)| PoolSpec {
            name,
            owner: owner_of(name),
            owner_vaddr: 0x5000_0000,
            device_base: 0x1_0000_0000 + i * 0x1000_0000,
            memory: region(m),
        })
        .collect();
    let callers = [(Channel::new(1), "gsp"), (Channel::new(2), "gpu")];
    let cfg = Config {
        clients: policy::CLIENTS,
        grants: policy::GRANTS,
        callers: &callers,
        epoch: 1,
    };
    let mut server = AllocServer::new(&cfg, specs).unwrap();
    let (gsp, gpu, client2) = (
        server.client_id("gsp").unwrap(),
        server.client_id("gpu").unwrap(),
        server.client_id("client2").unwrap(),
    );
    let gsp_dma = server.pool_id("gsp_dma").unwrap();
    let c2 = server.pool_id("client2_dma").unwrap();
    // 96 MiB is a 64 MiB and a 32 MiB block; a page comes out of the smaller one, so the largest
    // grant the pool can make, 64 MiB, is still possible after it.
    server.alloc(gsp, gsp_dma, PAGE, PAGE).unwrap();
    let big = server
        .alloc(gsp, gsp_dma, 64 * MIB, alloc_api::MAX_ALIGN)
        .unwrap();
    assert_eq!((big.offset, big.size), (0, 64 * MIB));
    assert_eq!(server.pool_usage(gsp_dma).unwrap().largest_free, 16 * MIB);
    server.alloc(gsp, gsp_dma, 12 * MIB, PAGE).unwrap();
    // About 20 MiB free, within quota, but no 16 MiB block any more.
    assert_eq!(
        server.alloc(gsp, gsp_dma, 9 * MIB, PAGE),
        Err(AllocError::OutOfMemory)
    );
    let gart = server.alloc(gpu, c2, 3 * MIB, PAGE).unwrap();
    assert_eq!(
        server.alloc(gpu, c2, 2 * MIB, PAGE),
        Err(AllocError::QuotaBytes)
    );
    assert_eq!(
        server.alloc(gsp, c2, PAGE, PAGE),
        Err(AllocError::NotGranted)
    );
    assert_eq!(server.client_usage(client2).unwrap().charged_bytes, 3 * MIB);
    assert_eq!(server.reclaim(client2).unwrap().buffers, 1);
    assert_eq!(
        server.free(gpu, gart.handle, gart.offset),
        Err(AllocError::Reclaimed)
    );
    assert_eq!(server.usage_lines().count(), 5);
    server.audit().unwrap();
}
