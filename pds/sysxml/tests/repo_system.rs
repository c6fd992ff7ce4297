//! The repository's own `system.xml` parses, validates and says what the design says.

use std::path::Path;

fn repo_system() -> sysxml::System {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml");
    sysxml::load(&path).unwrap()
}

#[test]
fn repo_system_xml_parses_and_validates() {
    let sys = repo_system();
    assert_eq!(sys.pds.len(), 10);
    let prio = |n: &str| sys.pd(n).unwrap().priority;
    assert_eq!(prio("supervisor"), 254);
    assert_eq!(prio("gsp_model"), 250);
    assert_eq!(prio("pci"), 230);
    assert_eq!(prio("alloc"), 220);
    assert_eq!(prio("gsp"), 200);
    assert_eq!(prio("gpu"), 180);
    assert_eq!(prio("drm"), 160);
    assert_eq!(prio("client0"), 100);
}
