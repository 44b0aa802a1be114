// SPDX-License-Identifier: GPL-2.0

//! The announce's frames: RARP as QEMU sends it, which MACs and VLANs, the
//! cap, and the rounds' timing.

use ivf_common::admin::AdminConfig;
use ivf_common::announce::{
    gap_before, plan, port_settings, rarp, PortSettings, Silence, ETHERTYPE_RARP, ETHERTYPE_VLAN,
    LINK_STATE_DISABLE, MAX_FRAMES, RARP_LEN,
};
use ivf_common::ids::Family;
use ivf_common::mbx::MbxLog;

const GUEST: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const EXTRA: [u8; 6] = [0x02, 0x49, 0x56, 0xee, 0x00, 0x01];
const ADMIN: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x07];

/// The PF reports `mac` for the VF.
fn pf_says(mac: [u8; 6]) -> PortSettings {
    PortSettings {
        mac,
        ..PortSettings::default()
    }
}

fn log_with(mac: Option<[u8; 6]>, vlans: &[u16], extra: &[[u8; 6]]) -> MbxLog {
    let mut l = MbxLog {
        mac,
        ..MbxLog::default()
    };
    for &v in vlans {
        l.vlans[v as usize / 64] |= 1 << (v % 64);
    }
    for (i, m) in extra.iter().enumerate() {
        l.macvlans[i] = Some(*m);
    }
    l
}

/// (source MAC, VLAN ID if tagged) of a frame, after checking it is a
/// well-formed RARP reverse request for its own source.
fn decode(f: &[u8]) -> ([u8; 6], Option<u16>) {
    assert_eq!(&f[..6], &[0xff; 6], "broadcast");
    let src: [u8; 6] = f[6..12].try_into().unwrap();
    let (tag, at) = if u16::from_be_bytes([f[12], f[13]]) == ETHERTYPE_VLAN {
        (Some(u16::from_be_bytes([f[14], f[15]]) & 0xfff), 16)
    } else {
        (None, 12)
    };
    assert_eq!(f.len(), RARP_LEN + at - 12);
    assert_eq!(u16::from_be_bytes([f[at], f[at + 1]]), ETHERTYPE_RARP);
    let arp = &f[at + 2..];
    assert_eq!(&arp[..8], &[0, 1, 8, 0, 6, 4, 0, 3], "RARP reverse request");
    assert_eq!(&arp[8..14], &src, "sender hardware address");
    assert_eq!(&arp[14..18], &[0; 4]);
    assert_eq!(&arp[18..24], &src, "target hardware address");
    assert_eq!(&arp[24..28], &[0; 4]);
    (src, tag)
}

#[test]
fn rarp_is_what_qemu_sends() {
    let (src, tag) = decode(rarp(GUEST, None).as_bytes());
    assert_eq!((src, tag), (GUEST, None));
    let (src, tag) = decode(rarp(GUEST, Some((5 << 13) | 100)).as_bytes());
    assert_eq!((src, tag), (GUEST, Some(100)));
    assert_eq!(rarp(GUEST, Some(100)).as_bytes()[14] >> 5, 0, "priority 0");
}

#[test]
fn each_mac_untagged_and_in_each_guest_vlan() {
    let p = plan(&log_with(Some(GUEST), &[10, 20], &[EXTRA]), &pf_says(GUEST));
    let got: Vec<_> = p
        .entries()
        .iter()
        .map(|e| decode(e.frame().as_bytes()))
        .collect();
    assert_eq!(
        got,
        [
            (GUEST, None),
            (GUEST, Some(10)),
            (GUEST, Some(20)),
            (EXTRA, None),
            (EXTRA, Some(10)),
            (EXTRA, Some(20)),
        ]
    );
    assert_eq!((p.macs, p.dropped), (2, 0));
}

#[test]
fn a_port_vlan_tags_every_frame_once() {
    let port = PortSettings {
        mac: GUEST,
        vlan: 300,
        qos: 3,
    };
    let p = plan(&log_with(Some(GUEST), &[10], &[EXTRA]), &port);
    let got: Vec<_> = p
        .entries()
        .iter()
        .map(|e| decode(e.frame().as_bytes()))
        .collect();
    assert_eq!(got, [(GUEST, Some(300)), (EXTRA, Some(300))]);
    assert_eq!(
        p.entries()[0].frame().as_bytes()[14] >> 5,
        3,
        "the port VLAN's priority"
    );
}

#[test]
fn the_mac_the_pf_reports_is_announced() {
    let port = PortSettings {
        mac: ADMIN,
        ..PortSettings::default()
    };
    let p = plan(&log_with(None, &[], &[]), &port);
    assert_eq!(p.entries().len(), 1);
    assert_eq!(decode(p.entries()[0].frame().as_bytes()), (ADMIN, None));
    // No MAC at all: nothing to announce.
    assert_eq!(plan(&MbxLog::default(), &PortSettings::default()).count, 0);
}

#[test]
fn invalid_and_repeated_macs_are_skipped() {
    let multicast = [0x01, 0x00, 0x5e, 0, 0, 1];
    let p = plan(
        &log_with(Some(GUEST), &[], &[GUEST, multicast, [0; 6], EXTRA]),
        &pf_says(GUEST),
    );
    let macs: Vec<_> = p.entries().iter().map(|e| e.mac).collect();
    assert_eq!(macs, [GUEST, EXTRA]);
}

#[test]
fn a_round_is_capped_and_the_rest_counted() {
    let vlans: Vec<u16> = (1..=100).collect();
    let p = plan(&log_with(Some(GUEST), &vlans, &[EXTRA]), &pf_says(GUEST));
    assert_eq!(p.count, MAX_FRAMES);
    assert_eq!(p.dropped, 2 * 101 - MAX_FRAMES);
    // The primary MAC's untagged frame is first, never the one dropped.
    assert_eq!(decode(p.entries()[0].frame().as_bytes()), (GUEST, None));
}

#[test]
fn rounds_follow_qemus_defaults() {
    let gaps: Vec<u32> = (0..5).map(gap_before).collect();
    assert_eq!(gaps, [0, 50, 150, 250, 350]);
}

/// The hole of issue 25: a log (forged in a stream, or raced into the
/// snoop) that names another tenant's or the gateway's MAC never makes the
/// host announce it; only the MAC the PF reports for the VF is.
#[test]
fn a_mac_only_the_log_names_is_never_announced() {
    let gateway = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];
    let p = plan(&log_with(Some(gateway), &[10], &[]), &pf_says(ADMIN));
    let macs: Vec<_> = p.entries().iter().map(|e| e.mac).collect();
    assert_eq!(macs, [ADMIN, ADMIN]);
    // The PF reports none: nothing, whatever the log says.
    let p = plan(
        &log_with(Some(gateway), &[10], &[]),
        &PortSettings::default(),
    );
    assert_eq!(p.count, 0);
}

fn admin(mac: [u8; 6], link_state: u8) -> AdminConfig {
    AdminConfig {
        mac,
        vlan: 7,
        qos: 1,
        link_state,
        ..AdminConfig::default()
    }
}

#[test]
fn the_announce_fails_closed() {
    let log = log_with(Some(GUEST), &[], &[]);
    assert_eq!(
        port_settings(Family::Igb, None, &log),
        Err(Silence::NoPfView),
        "no PF view is no announce, not an announce without a port VLAN"
    );
    assert_eq!(
        port_settings(Family::Igb, Some(&admin(GUEST, LINK_STATE_DISABLE)), &log),
        Err(Silence::LinkDisabled)
    );
    for auto_or_enable in [0, 1] {
        let got = port_settings(Family::Igb, Some(&admin(GUEST, auto_or_enable)), &log);
        assert_eq!(
            got,
            Ok(PortSettings {
                mac: GUEST,
                vlan: 7,
                qos: 1
            })
        );
    }
}

#[test]
fn ixgbe_announces_the_pfs_mac_only_when_this_guest_set_it() {
    // ixgbe keeps the MAC a VF last set across resets: an earlier tenant's.
    let earlier = [0x02, 0, 0, 0, 0, 0x99];
    let this_guest = log_with(Some(GUEST), &[], &[]);
    let got = port_settings(Family::Ixgbe, Some(&admin(earlier, 0)), &this_guest);
    assert_eq!(got.map(|p| p.mac), Ok([0; 6]));
    let got = port_settings(Family::Ixgbe, Some(&admin(GUEST, 0)), &this_guest);
    assert_eq!(got.map(|p| p.mac), Ok(GUEST));
    // igb forgets a VF-set MAC at a reset: what it reports is current.
    let got = port_settings(Family::Igb, Some(&admin(ADMIN, 0)), &MbxLog::default());
    assert_eq!(got.map(|p| p.mac), Ok(ADMIN));
}
