//! The repository's own `system.xml` parses, validates and says what the design says.

use std::path::Path;

fn repo_system() -> sysxml::System {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml");
    sysxml::load(&path).unwrap()
}

#[test]
fn repo_system_xml_has_every_pd_at_its_priority() {
    let sys = repo_system();
    let prios: Vec<_> = sys
        .pds
        .iter()
        .map(|p| (p.name.as_str(), p.priority))
        .collect();
    assert_eq!(
        prios,
        [
            ("supervisor", 254),
            ("pci", 230),
            ("alloc", 220),
            ("gsp", 200),
            ("gpu", 180),
            ("drm", 160),
            ("client0", 100),
            ("client1", 100),
            ("client2", 100),
            ("gsp_model", 250),
        ]
    );
}

#[test]
fn repo_supervisor_parents_every_driver_but_not_the_model() {
    let sys = repo_system();
    let sup = sys.pd_index("supervisor").unwrap();
    let children: Vec<_> = sys
        .children_of(sup)
        .map(|(_, p)| (p.name.as_str(), p.id.unwrap()))
        .collect();
    assert_eq!(children.len(), 8);
    assert!(children.contains(&("pci", 1)));
    assert!(children.contains(&("drm", 5)));
    assert_eq!(sys.pd("gsp_model").unwrap().parent, None);
    assert!(sys.pd("gsp_model").unwrap().passive);
}

#[test]
fn repo_calls_go_down_the_stack() {
    let sys = repo_system();
    // gsp calls pci over gsp's channel 1, which is pci's channel 2.
    let (own, peer) = sys
        .channels_of("gsp")
        .find(|(_, peer)| peer.pd == "pci")
        .unwrap();
    assert_eq!((own.id, own.pp, peer.id, peer.pp), (1, true, 2, false));
    // Every pp end calls a strictly higher priority (validation guarantees it; check the data).
    for ch in &sys.channels {
        for (caller, callee) in [(&ch.ends[0], &ch.ends[1]), (&ch.ends[1], &ch.ends[0])] {
            if caller.pp {
                let (a, b) = (sys.pd(&caller.pd).unwrap(), sys.pd(&callee.pd).unwrap());
                assert!(a.priority < b.priority, "{} -> {}", a.name, b.name);
            }
        }
    }
    // The model never calls anyone.
    assert!(sys.channels_of("gsp_model").all(|(own, _)| !own.pp));
}

#[test]
fn repo_dma_regions_are_shared_with_the_model_at_the_same_vaddr() {
    let sys = repo_system();
    let map = |pd: &str, mr: &str| {
        sys.pd(pd)
            .unwrap()
            .maps
            .iter()
            .find(|m| m.mr == mr)
            .unwrap()
            .clone()
    };
    assert_eq!(
        map("gsp", "gsp_dma").vaddr,
        map("gsp_model", "gsp_dma").vaddr
    );
    assert!(map("gsp", "gsp_dma").perms.w);
    assert!(!map("gsp", "gsp_fw").perms.w);
    assert!(!map("pci", "pci_ecam").cached);
    let gsp_dma = sys.region("gsp_dma").unwrap();
    assert_eq!(
        (gsp_dma.size, gsp_dma.page_size),
        (0x600_0000, Some(0x20_0000))
    );
    assert!(sys.fake_phys_base("gsp_dma") >= sysxml::FAKE_PHYS_START);
}
