//! Every refusal the parser and validator make, one small description each, checked for the line,
//! the element and the message; then the query helpers.

use crate::{parse, Error, Perms, System, FAKE_PHYS_START};

/// Parse `xml`, expect a refusal at `line` on `element` whose message contains `needle`.
#[track_caller]
fn refused(xml: &str, line: u32, element: &str, needle: &str) -> Error {
    let err = parse(xml).expect_err("description should be refused");
    assert_eq!(
        (err.line, err.element.as_str()),
        (line, element),
        "wrong place for: {err}"
    );
    assert!(
        err.message.contains(needle),
        "message {:?} lacks {needle:?}",
        err.message
    );
    err
}

/// Two PDs `lo` (priority 10) and `hi` (20) and a region `mr`; lines 1..=8. `extra` goes on line 9.
fn with(extra: &str) -> String {
    format!(
        r#"<system>
  <memory_region name="mr" size="0x1000" />
  <protection_domain name="lo" priority="10">
    <program_image path="lo.elf" />
  </protection_domain>
  <protection_domain name="hi" priority="20">
    <program_image path="hi.elf" />
  </protection_domain>
{extra}
</system>"#
    )
}

/// [`with`] a third PD `name` with the given attributes.
fn extra_pd(name: &str, attrs: &str) -> String {
    with(&format!(
        r#"<protection_domain name="{name}" {attrs}><program_image path="x" /></protection_domain>"#
    ))
}

#[test]
fn base_description_is_valid() {
    let sys = parse(&with("")).unwrap();
    assert_eq!(sys.pds.len(), 2);
    assert_eq!(sys.regions.len(), 1);
}

#[test]
fn duplicate_pd_name() {
    let xml = extra_pd("lo", "");
    refused(
        &xml,
        9,
        "protection_domain",
        "duplicate protection domain name 'lo'",
    );
}

#[test]
fn monitor_name_is_reserved() {
    let xml = extra_pd("monitor", "");
    refused(
        &xml,
        9,
        "protection_domain",
        "reserved for the Microkit Monitor",
    );
}

#[test]
fn duplicate_region_name() {
    refused(
        &with(r#"<memory_region name="mr" size="0x2000" />"#),
        9,
        "memory_region",
        "duplicate memory region name 'mr'",
    );
}

#[test]
fn duplicate_channel_id_within_pd() {
    let xml = with(
        r#"<channel><end pd="lo" id="1" /><end pd="hi" id="1" /></channel>
<channel><end pd="lo" id="1" /><end pd="hi" id="2" /></channel>"#,
    );
    refused(
        &xml,
        10,
        "end",
        "duplicate channel id: 1 in protection domain: 'lo'",
    );
}

#[test]
fn irq_and_channel_share_the_id_space() {
    let xml = r#"<system>
  <protection_domain name="a" priority="10">
    <program_image path="a.elf" />
    <irq irq="33" id="3" />
  </protection_domain>
  <protection_domain name="b"><program_image path="b.elf" /></protection_domain>
  <channel><end pd="a" id="3" /><end pd="b" id="0" /></channel>
</system>"#;
    refused(
        xml,
        7,
        "end",
        "duplicate channel id: 3 in protection domain: 'a'",
    );
}

#[test]
fn duplicate_irq_id_within_pd() {
    let xml = r#"<system>
  <protection_domain name="a">
    <program_image path="a.elf" />
    <irq irq="33" id="3" />
    <irq irq="34" id="3" />
  </protection_domain>
</system>"#;
    refused(xml, 5, "irq", "duplicate channel id: 3");
}

#[test]
fn duplicate_irq_number_across_pds() {
    let xml = r#"<system>
  <protection_domain name="a"><program_image path="a.elf" /><irq irq="33" id="3" /></protection_domain>
  <protection_domain name="b"><program_image path="b.elf" />
    <irq irq="33" id="1" /></protection_domain>
</system>"#;
    refused(xml, 4, "irq", "duplicate irq: 33");
}

#[test]
fn channel_id_above_61() {
    refused(
        &with(r#"<channel><end pd="lo" id="62" /><end pd="hi" id="1" /></channel>"#),
        9,
        "end",
        "id must be < 62",
    );
}

#[test]
fn duplicate_child_id() {
    let xml = r#"<system>
  <protection_domain name="parent" priority="100">
    <program_image path="p.elf" />
    <protection_domain name="c1" id="1"><program_image path="c.elf" /></protection_domain>
    <protection_domain name="c2" id="1"><program_image path="c.elf" /></protection_domain>
  </protection_domain>
</system>"#;
    refused(
        xml,
        5,
        "protection_domain",
        "duplicate id: 1 in protection domain: 'parent'",
    );
}

#[test]
fn child_without_id() {
    let xml = r#"<system>
  <protection_domain name="parent">
    <program_image path="p.elf" />
    <protection_domain name="c1"><program_image path="c.elf" /></protection_domain>
  </protection_domain>
</system>"#;
    refused(
        xml,
        4,
        "protection_domain",
        "missing required attribute 'id'",
    );
}

#[test]
fn id_on_a_root_pd_is_an_invalid_attribute() {
    let xml = extra_pd("x", r#"id="1""#);
    refused(&xml, 9, "protection_domain", "invalid attribute 'id'");
}

#[test]
fn end_names_unknown_pd() {
    refused(
        &with(
            r#"<channel><end pd="lo" id="1" />
  <end pd="nobody" id="1" /></channel>"#,
        ),
        10,
        "end",
        "invalid PD name 'nobody'",
    );
}

#[test]
fn channel_needs_exactly_two_ends() {
    refused(
        &with(r#"<channel><end pd="lo" id="1" /></channel>"#),
        9,
        "channel",
        "exactly two end elements",
    );
    let three =
        r#"<channel><end pd="lo" id="1" /><end pd="hi" id="1" /><end pd="hi" id="2" /></channel>"#;
    refused(&with(three), 9, "channel", "exactly two end elements");
}

#[test]
fn channel_child_must_be_end() {
    refused(
        &with(r#"<channel><end pd="lo" id="1" /><map mr="mr" vaddr="0" /></channel>"#),
        9,
        "map",
        "invalid XML element 'map'",
    );
}

#[test]
fn both_ends_pp() {
    refused(
        &with(
            r#"<channel><end pd="lo" id="1" pp="true" /><end pd="hi" id="1" pp="true" /></channel>"#,
        ),
        9,
        "channel",
        "cannot ppc bidirectionally",
    );
}

#[test]
fn ppc_toward_lower_priority() {
    // pp is on the caller's end (Microkit 2.3.0): hi (20) calling lo (10) is refused.
    let err = refused(
        &with(r#"<channel><end pd="lo" id="1" /><end pd="hi" id="1" pp="true" /></channel>"#),
        9,
        "channel",
        "PPCs must be to protection domains of strictly higher priorities",
    );
    assert!(
        err.message
            .contains("from pd hi (priority: 20) to pd lo (priority: 10)"),
        "{err}"
    );
}

#[test]
fn ppc_toward_equal_priority() {
    let xml = r#"<system>
  <protection_domain name="a" priority="5"><program_image path="a" /></protection_domain>
  <protection_domain name="b" priority="5"><program_image path="b" /></protection_domain>
  <channel><end pd="a" id="0" pp="true" /><end pd="b" id="0" /></channel>
</system>"#;
    refused(
        xml,
        4,
        "channel",
        "from pd a (priority: 5) to pd b (priority: 5)",
    );
}

#[test]
fn ppc_toward_higher_priority_is_accepted() {
    let sys = parse(&with(
        r#"<channel><end pd="lo" id="1" pp="true" /><end pd="hi" id="1" /></channel>"#,
    ))
    .unwrap();
    let (own, peer) = sys.channels_of("lo").next().unwrap();
    assert!(own.pp && !peer.pp);
    assert_eq!(peer.pd, "hi");
}

/// A PD `p` with the maps in `maps` (line 5 onwards) and regions `small` (4 KiB pages, 0x2000) and
/// `big` (2 MiB pages, 4 MiB).
fn pd_with_maps(maps: &str) -> String {
    format!(
        r#"<system>
  <memory_region name="small" size="0x2000" />
  <memory_region name="big" size="0x400000" page_size="0x200000" />
  <protection_domain name="p"><program_image path="p.elf" />
{maps}
  </protection_domain>
</system>"#
    )
}

#[test]
fn map_of_unknown_region() {
    refused(
        &pd_with_maps(r#"<map mr="nope" vaddr="0x1000" />"#),
        5,
        "map",
        "invalid memory region name 'nope'",
    );
}

#[test]
fn overlapping_maps() {
    let xml = pd_with_maps(
        r#"<map mr="small" vaddr="0x10000" />
<map mr="big" vaddr="0x200000" />
<map mr="small" vaddr="0x11000" />"#,
    );
    let err = refused(
        &xml,
        7,
        "map",
        "overlaps with map for 'small' [0x10000..0x12000)",
    );
    assert!(err.message.contains("[0x11000..0x13000)"), "{err}");
}

#[test]
fn same_region_twice_without_overlap_is_accepted() {
    let sys = parse(&pd_with_maps(
        r#"<map mr="small" vaddr="0x10000" /><map mr="small" vaddr="0x20000" />"#,
    ))
    .unwrap();
    assert_eq!(sys.pd("p").unwrap().maps.len(), 2);
}

#[test]
fn vaddr_not_aligned_to_page_size() {
    refused(
        &pd_with_maps(r#"<map mr="big" vaddr="0x101000" />"#),
        5,
        "map",
        "invalid vaddr alignment",
    );
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0x10800" />"#),
        5,
        "map",
        "invalid vaddr alignment",
    );
}

#[test]
fn map_beyond_address_space() {
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0xffffffffffff0000" />"#),
        5,
        "map",
        "exceeds valid address space",
    );
}

#[test]
fn region_size_not_multiple_of_page_size() {
    let xml = r#"<system>
  <memory_region name="r" size="0x300000" page_size="0x200000" />
</system>"#;
    refused(
        xml,
        2,
        "memory_region",
        "size is not a multiple of the page size",
    );
    refused(
        r#"<system><memory_region name="r" size="0x1800" /></system>"#,
        1,
        "memory_region",
        "size is not a multiple",
    );
}

#[test]
fn region_of_size_zero() {
    refused(
        r#"<system><memory_region name="r" size="0" /></system>"#,
        1,
        "memory_region",
        "size must not be zero",
    );
}

#[test]
fn unsupported_page_size() {
    refused(
        r#"<system><memory_region name="r" size="0x10000" page_size="0x10000" /></system>"#,
        1,
        "memory_region",
        "page size 0x10000 not supported",
    );
}

#[test]
fn phys_addr_not_page_aligned() {
    let xml = r#"<system>

  <memory_region name="r" size="0x200000" page_size="0x200000" phys_addr="0x40001000" />
</system>"#;
    refused(
        xml,
        3,
        "memory_region",
        "phys_addr is not aligned to the page size",
    );
}

#[test]
fn overlapping_physical_ranges() {
    let xml = r#"<system>
  <memory_region name="a" size="0x2000" phys_addr="0x10000" />
  <memory_region name="b" size="0x1000" phys_addr="0x11000" />
  <protection_domain name="p"><program_image path="p" /></protection_domain>
</system>"#;
    refused(
        xml,
        3,
        "memory_region",
        "overlaps with another memory region 'a'",
    );
}

#[test]
fn write_only_perms() {
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0x1000" perms="w" />"#),
        5,
        "map",
        "write-only mappings are not allowed",
    );
}

#[test]
fn perms_with_unknown_letter() {
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0x1000" perms="rq" />"#),
        5,
        "map",
        "combination of 'r', 'w', and 'x'",
    );
}

#[test]
fn perms_parse() {
    let sys = parse(&pd_with_maps(
        r#"<map mr="small" vaddr="0x1000" perms="rx" cached="false" />
<map mr="big" vaddr="0x200000" />"#,
    ))
    .unwrap();
    let maps = &sys.pd("p").unwrap().maps;
    assert_eq!(
        maps[0].perms,
        Perms {
            r: true,
            w: false,
            x: true
        }
    );
    assert!(!maps[0].cached);
    assert_eq!(maps[1].perms, Perms::RW);
    assert!(maps[1].cached);
}

#[test]
fn unknown_attribute() {
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0x1000" colour="red" />"#),
        5,
        "map",
        "invalid attribute 'colour'",
    );
    refused(
        r#"<system><memory_region name="r" size="0x1000" sise="1" /></system>"#,
        1,
        "memory_region",
        "invalid attribute 'sise'",
    );
}

#[test]
fn microkit_attribute_this_stack_does_not_support() {
    let xml = extra_pd("x", r#"fpu="false""#);
    refused(
        &xml,
        9,
        "protection_domain",
        "attribute 'fpu' is valid Microkit but not supported",
    );
}

#[test]
fn unknown_child_element() {
    refused(
        &pd_with_maps("<mapp />"),
        5,
        "mapp",
        "invalid XML element 'mapp'",
    );
    refused(
        &with("<region />"),
        9,
        "region",
        "invalid XML element 'region'",
    );
}

#[test]
fn microkit_element_this_stack_does_not_support() {
    refused(
        &pd_with_maps(r#"<virtual_machine name="vm" />"#),
        5,
        "virtual_machine",
        "valid Microkit but not supported",
    );
}

#[test]
fn priority_above_254() {
    let xml = extra_pd("x", r#"priority="255""#);
    refused(
        &xml,
        9,
        "protection_domain",
        "priority must be between 0 and 254",
    );
}

#[test]
fn bad_numbers() {
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0xzz" />"#),
        5,
        "map",
        "failed to parse integer '0xzz' in attribute 'vaddr'",
    );
    refused(
        r#"<system><memory_region name="r" size="4k" /></system>"#,
        1,
        "memory_region",
        "failed to parse integer '4k'",
    );
    refused(
        &with(r#"<channel><end pd="lo" id="-1" /><end pd="hi" id="1" /></channel>"#),
        9,
        "end",
        "failed to parse integer '-1'",
    );
    let huge = extra_pd("x", r#"priority="99999999999999999999""#);
    refused(&huge, 9, "protection_domain", "failed to parse integer");
}

#[test]
fn numbers_accept_hex_decimal_and_underscores() {
    let sys = parse(r#"<system><memory_region name="r" size="0x20_0000" page_size="2097152" />
<protection_domain name="p" priority="1_0"><program_image path="p" /></protection_domain></system>"#).unwrap();
    assert_eq!(sys.regions[0].size, 0x20_0000);
    assert_eq!(sys.regions[0].page_size, Some(0x20_0000));
    assert_eq!(sys.pds[0].priority, 10);
}

#[test]
fn missing_required_attribute() {
    refused(
        &pd_with_maps(r#"<map vaddr="0x1000" />"#),
        5,
        "map",
        "missing required attribute 'mr'",
    );
    refused(
        r#"<system><memory_region name="r" /></system>"#,
        1,
        "memory_region",
        "missing required attribute 'size'",
    );
}

#[test]
fn bad_boolean() {
    refused(
        &with(r#"<channel><end pd="lo" id="1" pp="yes" /><end pd="hi" id="1" /></channel>"#),
        9,
        "end",
        "pp must be 'true' or 'false'",
    );
    refused(
        &pd_with_maps(r#"<map mr="small" vaddr="0x1000" cached="0" />"#),
        5,
        "map",
        "cached must be 'true' or 'false'",
    );
}

#[test]
fn program_image_missing_or_repeated() {
    refused(
        &with(r#"<protection_domain name="x" />"#),
        9,
        "protection_domain",
        "missing 'program_image' element",
    );
    let twice = with(
        r#"<protection_domain name="x"><program_image path="a" /><program_image path="b" /></protection_domain>"#,
    );
    refused(
        &twice,
        9,
        "protection_domain",
        "program_image must only be specified once",
    );
}

#[test]
fn budget_above_period() {
    let xml = extra_pd("x", r#"budget="2000" period="1000""#);
    refused(
        &xml,
        9,
        "protection_domain",
        "budget (2000) must be less than, or equal to, period (1000)",
    );
    // Without a budget, the tool's default (1000 us) must still fit the period.
    let xml = extra_pd("x", r#"period="10""#);
    refused(
        &xml,
        9,
        "protection_domain",
        "budget (1000) must be less than, or equal to, period (10)",
    );
}

#[test]
fn stack_size_out_of_range_or_unaligned() {
    let small = extra_pd("x", r#"stack_size="0x800""#);
    refused(&small, 9, "protection_domain", "stack size must be between");
    let odd = extra_pd("x", r#"stack_size="0x1800""#);
    refused(
        &odd,
        9,
        "protection_domain",
        "aligned to the smallest page size",
    );
}

#[test]
fn duplicate_setvar_symbol() {
    let xml = pd_with_maps(
        r#"<map mr="small" vaddr="0x1000" setvar_vaddr="buf" />
<setvar symbol="buf" region_paddr="big" />"#,
    );
    refused(&xml, 6, "setvar", "setvar on symbol 'buf' already exists");
}

#[test]
fn duplicate_setvar_symbol_from_a_channel_end() {
    let xml = with(
        r#"<channel><end pd="lo" id="1" setvar_id="ch" /><end pd="hi" id="1" /></channel>
<channel><end pd="lo" id="2" setvar_id="ch" /><end pd="hi" id="2" /></channel>"#,
    );
    refused(&xml, 10, "end", "setvar on symbol 'ch' already exists");
}

#[test]
fn setvar_of_unknown_region() {
    refused(
        &pd_with_maps(r#"<setvar symbol="pa" region_paddr="nope" />"#),
        5,
        "setvar",
        "invalid memory region name 'nope'",
    );
}

#[test]
fn malformed_xml() {
    let err =
        parse("<system>\n  <memory_region name=\"r\" size=\"0x1000\">\n</system>").unwrap_err();
    assert_eq!((err.line, err.element.as_str()), (3, "xml"), "{err}");
    assert!(err.message.starts_with("malformed XML"));
}

#[test]
fn unexpected_text() {
    refused(
        "<system>\n  hello\n</system>",
        1,
        "system",
        "unexpected text",
    );
}

#[test]
fn root_must_be_system() {
    refused("<sdf />", 1, "sdf", "the root element must be <system>");
}

#[test]
fn at_least_one_pd() {
    refused(
        r#"<system><memory_region name="r" size="0x1000" /></system>"#,
        1,
        "system",
        "at least one protection domain",
    );
}

#[test]
fn error_display_names_file_line_column_and_element() {
    let err = parse(&pd_with_maps(r#"  <map mr="nope" vaddr="0x1000" />"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "system.xml:5:3: <map>: invalid memory region name 'nope' on 'map'"
    );
    assert_eq!(
        err.in_file("other.xml").to_string().split(':').next(),
        Some("other.xml")
    );
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("sysxml-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.xml");
    std::fs::write(&path, "<system />").unwrap();
    let err = crate::load(&path).unwrap_err();
    assert_eq!(err.file, "broken.xml");
    let missing = crate::load(&dir.join("missing.xml")).unwrap_err();
    assert_eq!((missing.file.as_str(), missing.line), ("missing.xml", 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn family() -> System {
    parse(
        r#"<system>
  <memory_region name="a" size="0x1000" />
  <memory_region name="dev" size="0x200000" phys_addr="0x100000000" />
  <memory_region name="b" size="0x400000" />
  <memory_region name="c" size="0x3000" />
  <protection_domain name="root" priority="50">
    <program_image path="r" />
    <protection_domain name="k1" id="4" priority="10">
      <program_image path="k" />
      <protection_domain name="g" id="1"><program_image path="g" /></protection_domain>
    </protection_domain>
    <protection_domain name="k2" id="7"><program_image path="k" />
      <map mr="b" vaddr="0x200000" />
      <map mr="c" vaddr="0x1000" />
    </protection_domain>
  </protection_domain>
  <channel><end pd="root" id="1" /><end pd="k1" id="2" notify="false" /></channel>
  <channel><end pd="k2" id="3" /><end pd="root" id="9" /></channel>
  <channel><end pd="k1" id="5" pp="true" /><end pd="root" id="6" /></channel>
</system>"#,
    )
    .unwrap()
}

#[test]
fn children_are_flattened_depth_first_with_parents() {
    let sys = family();
    let names: Vec<_> = sys.pds.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["root", "k1", "g", "k2"]);
    let parents: Vec<_> = sys.pds.iter().map(|p| (p.parent, p.id)).collect();
    assert_eq!(
        parents,
        [
            (None, None),
            (Some(0), Some(4)),
            (Some(1), Some(1)),
            (Some(0), Some(7))
        ]
    );
    let children: Vec<_> = sys
        .children_of(0)
        .map(|(i, p)| (i, p.name.as_str()))
        .collect();
    assert_eq!(children, [(1, "k1"), (3, "k2")]);
    assert_eq!(sys.children_of(3).count(), 0);
}

#[test]
fn channels_of_gives_own_and_peer_end() {
    let sys = family();
    let root: Vec<_> = sys
        .channels_of("root")
        .map(|(own, peer)| (own.id, peer.pd.as_str(), peer.id))
        .collect();
    assert_eq!(root, [(1, "k1", 2), (9, "k2", 3), (6, "k1", 5)]);
    let (own, peer) = sys.channels_of("k1").next().unwrap();
    assert!(!own.notify && peer.notify);
    assert_eq!(sys.channels_of("nobody").count(), 0);
}

#[test]
fn effective_page_size_follows_the_tools_optimisation() {
    let sys = family();
    let page = |n: &str| sys.effective_page_size(sys.region(n).unwrap());
    assert_eq!(page("a"), 0x1000); // too small for a large page
    assert_eq!(page("b"), 0x20_0000); // 4 MiB, mapped at a 2 MiB-aligned vaddr
    assert_eq!(page("c"), 0x1000);
}

#[test]
fn fake_phys_bases_are_aligned_disjoint_and_skip_declared_ranges() {
    let sys = family();
    let bases = sys.fake_phys_bases();
    // `a` would start at FAKE_PHYS_START, where `dev` is declared: it moves past it.
    assert_eq!(sys.fake_phys_base("dev"), FAKE_PHYS_START);
    assert_eq!(sys.fake_phys_base("a"), FAKE_PHYS_START + 0x20_0000);
    assert_eq!(sys.fake_phys_base("nope"), 0);
    let mut ranges: Vec<_> = sys
        .regions
        .iter()
        .zip(&bases)
        .map(|(mr, &b)| (b, b + mr.size))
        .collect();
    for (mr, &base) in sys.regions.iter().zip(&bases) {
        assert_eq!(base % 0x20_0000, 0, "{}", mr.name);
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
    // Stable: the same description gives the same layout.
    assert_eq!(family().fake_phys_bases(), bases);
}

#[test]
fn fake_phys_layout_ends_even_for_addresses_at_the_top_of_the_space() {
    // Not a valid description (validation refuses the overflowing range); the layout must still
    // come back rather than loop.
    let mut sys = family();
    let top_page = 0xffff_ffff_ffe0_0000;
    // `dev` ends beyond the top; `b` fills the space up to it, so `c` lands on `dev` and every
    // step past `dev` saturates back onto it.
    sys.regions[1].phys_addr = Some(top_page);
    sys.regions[2].size = top_page - (FAKE_PHYS_START + 0x20_0000) - 0x1000;
    let bases = sys.fake_phys_bases();
    assert_eq!(bases.len(), sys.regions.len());
    assert_eq!(bases[1], top_page);
}
