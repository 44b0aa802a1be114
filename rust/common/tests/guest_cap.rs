// SPDX-License-Identifier: GPL-2.0

//! The guest capability's layout and placement, on both families' VF
//! config layouts (what vfio assigns, as the datasheets and QEMU's igbvf
//! model lay them out).

use ivf_common::guest_cap::{self, off, offers, restored, CapView, ParseError, PlaceError};

const N: usize = guest_cap::STD_CONFIG_LEN;

/// A VF's config space as vfio shows it: the 64-byte header, then the
/// capabilities `(offset, id, length)` linked in order.
fn layout(caps: &[(usize, u8, usize)]) -> ([u8; N], [bool; N], [u8; N]) {
    let mut user = [0u8; N];
    let mut assigned = [false; N];
    let mut hw = [0u8; N];
    assigned[..0x40].iter_mut().for_each(|a| *a = true);
    hw[0] = 0x86;
    hw[1] = 0x80;
    user[guest_cap::CAP_LIST] = caps.first().map_or(0, |c| c.0 as u8);
    for (i, &(at, id, len)) in caps.iter().enumerate() {
        user[at] = id;
        user[at + 1] = caps.get(i + 1).map_or(0, |c| c.0 as u8);
        assigned[at..at + len].iter_mut().for_each(|a| *a = true);
        hw[at..at + len].iter_mut().for_each(|b| *b = 0x5a);
    }
    (user, assigned, hw)
}

/// 82576/I350 VF: MSI-X at 0x70 (12 bytes), PCIe v2 at 0xa0 (0x3c bytes).
fn igb_vf() -> ([u8; N], [bool; N], [u8; N]) {
    layout(&[(0x70, 0x11, 12), (0xa0, 0x10, 0x3c)])
}

/// 82599/X540/X550 VF: the same standard capabilities (AER and ARI are in
/// extended space).
fn ixgbe_vf() -> ([u8; N], [bool; N], [u8; N]) {
    layout(&[(0x70, 0x11, 12), (0xa0, 0x10, 0x3c)])
}

/// QEMU's igbvf model links them the other way: PCIe first, MSI-X last.
fn qemu_igbvf() -> ([u8; N], [bool; N], [u8; N]) {
    layout(&[(0xa0, 0x10, 0x3c), (0x70, 0x11, 12)])
}

#[test]
fn capability_sits_at_the_top_of_standard_space_on_both_families() {
    for (name, (user, assigned, hw)) in [("igb", igb_vf()), ("ixgbe", ixgbe_vf())] {
        let p = guest_cap::place(&user, &assigned, &hw).unwrap();
        assert_eq!((p.at, p.link), (0xe8, 0xa1), "{name}");
        // Never over a byte vfio gives to a capability or the header.
        let span = usize::from(p.at)..usize::from(p.at) + guest_cap::LEN;
        assert!(
            !assigned[span].contains(&true),
            "{name}: over an assigned byte"
        );
    }
    let (user, assigned, hw) = qemu_igbvf();
    let p = guest_cap::place(&user, &assigned, &hw).unwrap();
    assert_eq!(
        (p.at, p.link),
        (0xe8, 0x71),
        "QEMU's igbvf: linked from MSI-X"
    );
}

#[test]
fn capability_avoids_bytes_the_device_implements() {
    let (user, assigned, mut hw) = igb_vf();
    // A register the device answers in the top gap: the capability moves
    // below it (into the gap between the two real capabilities).
    hw[0xf0] = 1;
    let p = guest_cap::place(&user, &assigned, &hw).unwrap();
    assert!(usize::from(p.at) + guest_cap::LEN <= 0xf0 || p.at > 0xf0);
    assert!(
        (0x7c..0xa0).contains(&usize::from(p.at)) || usize::from(p.at) >= 0xdc,
        "{p:?}"
    );
    let span = usize::from(p.at)..usize::from(p.at) + guest_cap::LEN;
    assert!(hw[span.clone()].iter().all(|&b| b == 0));
    assert!(!assigned[span].contains(&true));
}

#[test]
fn capability_needs_a_list_and_room() {
    let (user, assigned, hw) = layout(&[]);
    assert_eq!(
        guest_cap::place(&user, &assigned, &hw),
        Err(PlaceError::NoList)
    );
    let (user, _, hw) = igb_vf();
    assert_eq!(
        guest_cap::place(&user, &[true; N], &hw),
        Err(PlaceError::NoRoom)
    );
    // A list that loops never ends: refused, not walked forever.
    let (mut user, assigned, hw) = igb_vf();
    user[0xa1] = 0x70;
    assert!(matches!(
        guest_cap::place(&user, &assigned, &hw),
        Err(PlaceError::BadList(_))
    ));
    // A next pointer into the header.
    let (mut user, assigned, hw) = igb_vf();
    user[0xa1] = 0x10;
    assert!(matches!(
        guest_cap::place(&user, &assigned, &hw),
        Err(PlaceError::BadList(_))
    ));
}

#[test]
fn capability_renders_and_parses() {
    let v = CapView {
        offers: offers::MIGRATION | offers::DEVICE_DIRTY_TRACKING,
        restored: restored::REGISTERS | restored::FILTERS,
        generation: 0xdead_beef,
    };
    let b = guest_cap::render(&v);
    assert_eq!(b[off::ID], 0x09);
    assert_eq!(b[off::NEXT], 0);
    assert_eq!(usize::from(b[off::LENGTH]), guest_cap::LEN);
    assert_eq!(&b[off::SIGNATURE..off::SIGNATURE + 4], b"IVFM");
    assert_eq!(
        &b[off::GENERATION..off::GENERATION + 4],
        &[0xef, 0xbe, 0xad, 0xde]
    );
    assert_eq!(guest_cap::parse(&b), Ok(v));
    // Reserved bytes are zero.
    assert!(b[0x0a..0x0c].iter().chain(&b[0x10..]).all(|&x| x == 0));
}

#[test]
fn capability_parse_refuses_other_capabilities() {
    let mut b = guest_cap::render(&CapView::default());
    b[off::SIGNATURE] = b'X';
    assert!(matches!(
        guest_cap::parse(&b),
        Err(ParseError::Signature(_))
    ));
    let mut b = guest_cap::render(&CapView::default());
    b[off::ID] = 0x10;
    assert_eq!(guest_cap::parse(&b), Err(ParseError::NotVendor(0x10)));
    let mut b = guest_cap::render(&CapView::default());
    b[off::VERSION] = 2;
    assert_eq!(guest_cap::parse(&b), Err(ParseError::Version(2)));
    let mut b = guest_cap::render(&CapView::default());
    b[off::LENGTH] = 8;
    assert!(matches!(guest_cap::parse(&b), Err(ParseError::Short(8))));
    assert!(matches!(
        guest_cap::parse(&b[..2]),
        Err(ParseError::Short(2))
    ));
}

#[test]
fn the_link_and_the_bytes_are_what_a_reader_sees() {
    let (user, assigned, hw) = igb_vf();
    let p = guest_cap::place(&user, &assigned, &hw).unwrap();
    let cap = guest_cap::render(&CapView::default());
    assert_eq!(p.byte_at(&cap, 0xa1), Some(0xe8));
    assert_eq!(p.byte_at(&cap, 0xe8), Some(0x09));
    assert_eq!(p.byte_at(&cap, 0xe8 + guest_cap::LEN), None);
    assert_eq!(p.byte_at(&cap, 0xa0), None);
    assert!(p.covers(0xe8) && p.covers(0xff) && !p.covers(0xe7));
}
