// SPDX-License-Identifier: GPL-2.0

//! The PF_MBX section comes from another host and is not trusted: every
//! field of it is range-checked when the frame is decoded, and whatever
//! decodes replays at a Linux PF (the model in `linux_pf/`) as valid
//! mailbox requests: none carries the PF's reply bits, none times out, and
//! the PF accepts each one.

mod linux_pf;
mod support;

use ivf_common::hal::DeviceState;
use ivf_common::ids::{Family, PCI_VENDOR_ID_INTEL};
use ivf_common::mbx::{
    mac_words, msg, replay_log, MbxError, MbxLog, ENCODED_LEN, MAX_MACVLANS, MAX_MC, MBX_WORDS,
};
use ivf_common::regs::{regmap, IGB};
use ivf_common::state::{
    decode_frame, header_for, write_state_frame, PfState, MAX_FRAME_LEN, TAG_PF_MBX,
};
use ivf_common::stream::{self, parse, StreamError};
use linux_pf::LinuxPf;
use proptest::prelude::*;

fn device_id(family: Family) -> u16 {
    match family {
        Family::Ixgbe => 0x10ed,
        Family::Igb => 0x10ca,
    }
}

/// Offset of the PF_MBX payload in `frame`.
fn pf_mbx_at(frame: &[u8]) -> usize {
    let (_, mut sections) = parse(frame).unwrap();
    let s = sections.find(|s| s.tag == TAG_PF_MBX).unwrap();
    s.payload.as_ptr() as usize - frame.as_ptr() as usize
}

/// A source's state frame of `family` carrying `log`, its PF_MBX payload
/// then edited by `edit` (and the frame resealed).
fn frame(family: Family, log: &MbxLog, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let map = regmap(family);
    let h = header_for(family, map, PCI_VENDOR_ID_INTEL, device_id(family), 1);
    let s = DeviceState {
        queue_pairs: map.max_queue_pairs,
        ..DeviceState::default()
    };
    let pf = PfState {
        mbx: Some(*log),
        admin: None,
    };
    let mut b = vec![0u8; MAX_FRAME_LEN];
    let n = write_state_frame(&mut b, h, map, &s, &pf).unwrap();
    b.truncate(n);
    let at = pf_mbx_at(&b);
    edit(&mut b[at..at + ENCODED_LEN]);
    stream::reseal(&mut b);
    b
}

/// The oracle: `log` (a decoded one) replayed at a Linux PF of `family`.
/// No request carries ACK, NACK or CTS; none times out; the PF accepts
/// every request and ends with the log, but for one thing the decoder does
/// not judge: an ixgbe xcast mode the negotiated API does not offer, which
/// the PF refuses (EREMOTEIO, not a hang).
fn replays_cleanly(family: Family, log: &MbxLog) -> Result<(), TestCaseError> {
    let mut pf = LinuxPf::new(family);
    let r = replay_log(&mut pf, regmap(family), family, log);
    for w in &pf.requests {
        prop_assert_eq!(
            w & (msg::ACK | msg::NACK | msg::CTS),
            0,
            "{:?}: request word 0 {:#010x} carries reply bits ({:?})",
            family,
            w,
            log
        );
    }
    match r {
        Ok((accepted, sent)) => {
            if log.flags & 1 != 0 {
                prop_assert_eq!(accepted, MbxLog { ignored: 0, ..*log }, "{:?}", family);
            } else {
                prop_assert_eq!(sent, 0, "no RESET, nothing replayed");
            }
        }
        Err(MbxError::Timeout { what, kind }) => {
            prop_assert!(
                false,
                "{:?}: the PF did not {} message {:#x} ({:?})",
                family,
                what,
                kind,
                log
            );
        }
        Err(MbxError::Refused { kind, reply }) => prop_assert!(
            family == Family::Ixgbe && kind == msg::UPDATE_XCAST_MODE,
            "{:?}: the PF refused {:#x} (reply {:#010x}) of {:?}",
            family,
            kind,
            reply,
            log
        ),
    }
    Ok(())
}

#[test]
fn igb_xcast_0x8000_is_refused_not_replayed_into_a_timeout() {
    let log = MbxLog {
        flags: 1,
        xcast: Some(0x8000),
        ..MbxLog::default()
    };
    // As it stands, its replay's word 0 is SET_PROMISC | 0x8000 << 16: the
    // ACK bit. The PF takes the request for one it already answered and
    // never replies; the VF's wait ends in a timeout (the load's ERROR).
    let mut pf = LinuxPf::new(Family::Igb);
    assert_eq!(
        replay_log(&mut pf, &IGB, Family::Igb, &log).unwrap_err(),
        MbxError::Timeout {
            what: "reply",
            kind: msg::SET_PROMISC_OR_MACVLAN
        }
    );
    assert_eq!(pf.requests, [msg::RESET, 0x8000_0006]);
    // The decoder refuses it first, naming the field and both values.
    let e = decode_frame(&frame(Family::Igb, &log, |_| {})).unwrap_err();
    assert_eq!(
        e,
        StreamError::Malformed {
            field: "PF_MBX xcast",
            value: 0x8000,
            expected: 2
        }
    );
    assert_eq!(
        e.to_string(),
        "malformed stream: PF_MBX xcast is 32768, expected 2"
    );
}

/// Values near every bound the decoder could have, and any.
fn word() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..16,
        60u32..80,
        9700u32..9760,
        16100u32..16160,
        0xf0u32..0x110,
        0x7ff0u32..0x8010,
        any::<u32>(),
    ]
}

/// Mostly what a PF accepts, sometimes anything near a bound.
fn field(valid: impl Strategy<Value = u32> + 'static) -> impl Strategy<Value = Option<u32>> {
    prop::option::of(prop_oneof![4 => valid, 1 => word()])
}

fn mac() -> impl Strategy<Value = [u8; 6]> {
    prop_oneof![
        6 => any::<[u8; 6]>().prop_map(|mut m| {
            m[0] &= !1;
            m[5] |= 1;
            m
        }),
        1 => Just([0u8; 6]),
        1 => Just([0x01, 0, 0x5e, 0, 0, 1]),
        1 => any::<[u8; 6]>(),
    ]
}

/// Any log, the fields within their types only (the multicast hashes
/// and MACVLANs as a few at random places, the rest zero).
fn any_log() -> BoxedStrategy<MbxLog> {
    let values = (
        prop_oneof![8 => Just(1u32), 1 => Just(0), 1 => any::<u8>().prop_map(u32::from)],
        prop::option::of(mac()),
        field(0u32..=8),
        field(prop_oneof![60u32..10_000, 9700u32..16_200]),
        field(0u32..4),
        any::<u32>(),
    );
    let sets = (
        0u8..=MAX_MC as u8,
        prop::collection::vec(
            (
                0..MAX_MC,
                prop_oneof![0u16..16, 0xff0u16..0x1010, any::<u16>()],
                prop::bool::weighted(0.1),
            ),
            0..4,
        ),
        prop::collection::vec(0u16..4096, 0..4),
        prop::collection::vec((0..MAX_MACVLANS, mac()), 0..3),
    );
    (values.boxed(), sets.boxed())
        .prop_map(|(values, sets)| {
            let (flags, mac, api, max_frame, xcast, ignored) = values;
            let (mc_count, mc, vlans, macvlans) = sets;
            let mut l = MbxLog {
                flags,
                mac,
                api,
                max_frame,
                xcast,
                mc_count,
                ignored,
                ..MbxLog::default()
            };
            // Hashes in force, and now and then one past the count.
            for (i, h, stray) in mc {
                if stray {
                    l.mc[i] = h;
                } else if mc_count > 0 {
                    l.mc[i % mc_count as usize] = h;
                }
            }
            for v in vlans {
                l.vlans[v as usize / 64] |= 1 << (v % 64);
            }
            for (i, m) in macvlans {
                l.macvlans[i] = Some(m);
            }
            l
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever decodes replays cleanly and re-encodes to its own bytes;
    /// whatever does not is refused as malformed. Byte edits reach the
    /// presence bits, reserved bytes and the slots of absent values.
    #[test]
    fn whatever_decodes_replays_cleanly(
        log in any_log(),
        edits in prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec((0..ENCODED_LEN, any::<u8>()), 1..3),
        ],
    ) {
        for family in Family::ALL {
            let b = frame(family, &log, |p| {
                for (at, v) in &edits {
                    p[*at] = *v;
                }
            });
            match decode_frame(&b) {
                Ok(f) => {
                    let log = f.pf.mbx.expect("a state frame");
                    // Nothing in the bytes escapes the checks: what decodes
                    // is exactly what the log encodes to.
                    let at = pf_mbx_at(&b);
                    prop_assert_eq!(&encoded(&log)[..], &b[at..at + ENCODED_LEN]);
                    replays_cleanly(family, &log)?;
                }
                Err(e) => prop_assert!(matches!(e, StreamError::Malformed { .. }), "{:?}", e),
            }
        }
    }
}

/// A source's log of `family` with every field set, within range.
fn full_log(family: Family) -> MbxLog {
    let mut l = MbxLog {
        flags: 1,
        mac: Some([0x02, 0x12, 0x34, 0x56, 0x78, 0x9a]),
        max_frame: Some(9018),
        xcast: Some(2),
        mc_count: 3,
        ignored: 5,
        ..MbxLog::default()
    };
    l.mc[..3].copy_from_slice(&[0x0aaa, 0x0bbb, 0xffff]);
    for v in [0u16, 100, 4095] {
        l.vlans[v as usize / 64] |= 1 << (v % 64);
    }
    if family == Family::Ixgbe {
        l.api = Some(8);
        l.macvlans[0] = Some([0x02, 0x49, 0x56, 0xee, 0, 1]);
        l.macvlans[15] = Some([0x0e, 0x0f, 0, 0, 0, 2]);
    }
    l
}

fn encoded(l: &MbxLog) -> [u8; ENCODED_LEN] {
    let mut b = [0u8; ENCODED_LEN];
    l.encode(&mut b);
    b
}

fn malformed(field: &'static str, value: u64, expected: u64) -> Result<MbxLog, StreamError> {
    Err(StreamError::Malformed {
        field,
        value,
        expected,
    })
}

/// Byte offsets of the encoded log (Documentation/stream-format.rst).
mod at {
    pub const HEAD: usize = 0;
    pub const MAC: usize = 4;
    pub const API: usize = 12;
    pub const MAX_FRAME: usize = 16;
    pub const XCAST: usize = 20;
    pub const MC_COUNT: usize = 24;
    pub const VALID: usize = 604;
    pub const MACVLANS: usize = 608;
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn full_logs_decode_and_replay() {
    for family in Family::ALL {
        let l = full_log(family);
        assert_eq!(MbxLog::decode(family, &encoded(&l)), Ok(l), "{family:?}");
        let f = decode_frame(&frame(family, &l, |_| {})).unwrap();
        assert_eq!(f.pf.mbx, Some(l));
        replays_cleanly(family, &l).unwrap();
        let mut pf = LinuxPf::new(family);
        replay_log(&mut pf, regmap(family), family, &l).unwrap();
        assert_eq!(pf.pf.vlans.len(), 3, "VLAN 0 and 4095 too");
    }
}

#[test]
fn each_field_at_its_bounds() {
    let ok = |family: Family, edit: &dyn Fn(&mut MbxLog)| {
        let mut l = full_log(family);
        edit(&mut l);
        assert_eq!(
            MbxLog::decode(family, &encoded(&l)),
            Ok(l),
            "{family:?} {l:?}"
        );
        replays_cleanly(family, &l).unwrap();
    };
    let bad = |family: Family, edit: &dyn Fn(&mut MbxLog), want: Result<MbxLog, StreamError>| {
        let mut l = full_log(family);
        edit(&mut l);
        assert_eq!(MbxLog::decode(family, &encoded(&l)), want, "{family:?}");
        assert_eq!(l.check(family).map(|()| l), want, "check agrees");
    };
    use Family::{Igb, Ixgbe};
    // flags: only RESET; the bits of state the log does not carry are
    // refused by name.
    ok(Ixgbe, &|l| l.flags = 0);
    bad(Igb, &|l| l.flags = 0x11, malformed("PF_MBX flags", 0x11, 1));
    bad(
        Ixgbe,
        &|l| l.flags = 3,
        malformed(
            "PF_MBX flags: IPsec SAs at the PF (IPSEC_ADD), not carried",
            3,
            0,
        ),
    );
    bad(
        Igb,
        &|l| l.flags = 5,
        malformed(
            "PF_MBX flags: igb MAC filters at the PF (SET_MAC_ADDR ADD), not carried",
            5,
            0,
        ),
    );
    bad(
        Ixgbe,
        &|l| l.flags = 9 | 0x13 << 16,
        malformed("PF_MBX flags: an accepted request, not carried", 0x13, 0),
    );

    bad(
        Ixgbe,
        &|l| l.flags = 0x81,
        malformed("PF_MBX flags", 0x81, 1),
    );
    // mac: a unicast address.
    ok(Igb, &|l| l.mac = None);
    ok(Igb, &|l| l.mac = Some([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]));
    bad(
        Igb,
        &|l| l.mac = Some([0x01, 0, 0x5e, 0, 0, 1]),
        malformed("PF_MBX mac I/G bit", 1, 0),
    );
    bad(
        Ixgbe,
        &|l| l.mac = Some([0xff; 6]),
        malformed("PF_MBX mac I/G bit", 1, 0),
    );
    bad(
        Ixgbe,
        &|l| l.mac = Some([0; 6]),
        malformed("PF_MBX mac nonzero", 0, 1),
    );
    // api: ixgbe 1.0 to 1.4, 1.6, 1.7 (Linux 7.3's); igb none.
    for v in [0, 2, 3, 4, 5, 7, 8] {
        ok(Ixgbe, &|l| l.api = Some(v));
    }
    ok(Ixgbe, &|l| l.api = None);
    bad(Ixgbe, &|l| l.api = Some(1), malformed("PF_MBX api", 1, 8));
    bad(Ixgbe, &|l| l.api = Some(6), malformed("PF_MBX api", 6, 8));
    bad(Ixgbe, &|l| l.api = Some(9), malformed("PF_MBX api", 9, 8));
    bad(
        Ixgbe,
        &|l| l.api = Some(u32::MAX),
        malformed("PF_MBX api", u32::MAX.into(), 8),
    );
    bad(
        Igb,
        &|l| l.api = Some(0),
        malformed("PF_MBX api presence (igb)", 1, 0),
    );
    // max_frame: ixgbe 68..=9728, igb up to 0x3F00.
    for v in [68, 1518, 9728] {
        ok(Ixgbe, &|l| l.max_frame = Some(v));
    }
    for v in [0, 1522, 9728, 16128] {
        ok(Igb, &|l| l.max_frame = Some(v));
    }
    bad(
        Ixgbe,
        &|l| l.max_frame = Some(67),
        malformed("PF_MBX max_frame (minimum)", 67, 68),
    );
    bad(
        Ixgbe,
        &|l| l.max_frame = Some(0),
        malformed("PF_MBX max_frame (minimum)", 0, 68),
    );
    bad(
        Ixgbe,
        &|l| l.max_frame = Some(9729),
        malformed("PF_MBX max_frame", 9729, 9728),
    );
    bad(
        Igb,
        &|l| l.max_frame = Some(16129),
        malformed("PF_MBX max_frame", 16129, 16128),
    );
    bad(
        Igb,
        &|l| l.max_frame = Some(0x8000_0000),
        malformed("PF_MBX max_frame", 0x8000_0000, 16128),
    );
    // xcast: ixgbe modes 0..=3; igb the multicast flag only.
    for v in 0..=3 {
        ok(Ixgbe, &|l| l.xcast = Some(v));
    }
    bad(
        Ixgbe,
        &|l| l.xcast = Some(4),
        malformed("PF_MBX xcast", 4, 3),
    );
    bad(
        Ixgbe,
        &|l| l.xcast = Some(0x8000),
        malformed("PF_MBX xcast", 0x8000, 3),
    );
    ok(Igb, &|l| l.xcast = Some(0));
    ok(Igb, &|l| l.xcast = None);
    bad(Igb, &|l| l.xcast = Some(1), malformed("PF_MBX xcast", 1, 2));
    bad(Igb, &|l| l.xcast = Some(3), malformed("PF_MBX xcast", 3, 2));
    bad(
        Igb,
        &|l| l.xcast = Some(0x100),
        malformed("PF_MBX xcast", 0x100, 2),
    );
    bad(
        Igb,
        &|l| l.xcast = Some(0x2000),
        malformed("PF_MBX xcast", 0x2000, 2),
    );
    // mc: at most 30 hashes, any 16 bits; none past the count.
    ok(Igb, &|l| {
        l.mc_count = MAX_MC as u8;
        l.mc = [0xffff; MAX_MC];
    });
    ok(Igb, &|l| {
        l.mc_count = 0;
        l.mc = [0; MAX_MC];
    });
    bad(
        Igb,
        &|l| l.mc[3] = 7,
        malformed("PF_MBX mc hash past mc_count", 7, 0),
    );
    bad(
        Ixgbe,
        &|l| l.mc[29] = 1,
        malformed("PF_MBX mc hash past mc_count", 1, 0),
    );
    // vlans: every VLAN ID, 0 to 4095.
    ok(Igb, &|l| l.vlans = [u64::MAX; 64]);
    // macvlans: ixgbe unicast addresses; igb none.
    ok(Ixgbe, &|l| {
        l.macvlans = [Some([2, 0, 0, 0, 0, 9]); MAX_MACVLANS]
    });
    bad(
        Ixgbe,
        &|l| l.macvlans[3] = Some([0x33, 0x33, 0, 0, 0, 1]),
        malformed("PF_MBX macvlan I/G bit", 1, 0),
    );
    bad(
        Ixgbe,
        &|l| l.macvlans[1] = Some([0; 6]),
        malformed("PF_MBX macvlan nonzero", 0, 1),
    );
    bad(
        Igb,
        &|l| l.macvlans[2] = Some([2, 0, 0, 0, 0, 9]),
        malformed("PF_MBX macvlan valid mask (igb)", 4, 0),
    );
    // ignored: a count, any value.
    ok(Ixgbe, &|l| l.ignored = u32::MAX);
}

#[test]
fn each_byte_of_the_layout_is_checked() {
    let bad = |family: Family, l: &MbxLog, edit: &dyn Fn(&mut [u8]), want| {
        let mut b = encoded(l);
        edit(&mut b);
        assert_eq!(MbxLog::decode(family, &b), want);
        // And in a frame, as a destination meets it.
        assert_eq!(
            decode_frame(&frame(family, l, edit)).map(|f| f.pf.mbx.unwrap()),
            want
        );
    };
    let full = full_log(Family::Ixgbe);
    let empty = MbxLog::default();
    let ixgbe = Family::Ixgbe;
    assert_eq!(
        MbxLog::decode(ixgbe, &encoded(&full)[1..]),
        malformed("PF_MBX section", 735, 736)
    );
    bad(
        ixgbe,
        &full,
        &|b| b[at::HEAD + 1] |= 0x10,
        malformed("PF_MBX presence bits", 0x1f, 0xf),
    );
    bad(
        ixgbe,
        &full,
        &|b| b[at::HEAD + 3] = 0x80,
        malformed("PF_MBX presence bits", 0x80_000f, 0xf),
    );
    bad(
        ixgbe,
        &full,
        &|b| put32(b, at::MC_COUNT, 31),
        malformed("PF_MBX mc_count", 31, 30),
    );
    bad(
        ixgbe,
        &full,
        &|b| b[at::MAC + 7] = 1,
        malformed("PF_MBX mac bytes 6..8", 0x100, 0),
    );
    bad(
        ixgbe,
        &empty,
        &|b| b[at::MAC] = 2,
        malformed("PF_MBX mac (absent)", 0x0200_0000_0000, 0),
    );
    bad(
        ixgbe,
        &empty,
        &|b| put32(b, at::API, 5),
        malformed("PF_MBX api (absent)", 5, 0),
    );
    bad(
        ixgbe,
        &empty,
        &|b| put32(b, at::MAX_FRAME, 1),
        malformed("PF_MBX max_frame (absent)", 1, 0),
    );
    bad(
        Family::Igb,
        &empty,
        &|b| put32(b, at::XCAST, 0x8000),
        malformed("PF_MBX xcast (absent)", 0x8000, 0),
    );
    bad(
        ixgbe,
        &full,
        &|b| put32(b, at::VALID, 0x1_8001),
        malformed("PF_MBX macvlan valid mask", 0x1_8001, 0xffff),
    );
    bad(
        ixgbe,
        &full,
        &|b| b[at::MACVLANS + 8 + 5] = 1,
        malformed("PF_MBX macvlan (absent)", 1, 0),
    );
    bad(
        ixgbe,
        &full,
        &|b| b[at::MACVLANS + 6] = 1,
        malformed("PF_MBX macvlan bytes 6..8", 1, 0),
    );
    // A present value is then judged by its range.
    bad(
        Family::Igb,
        &empty,
        &|b| {
            b[at::HEAD + 1] = 8;
            put32(b, at::XCAST, 0x8000);
        },
        malformed("PF_MBX xcast", 0x8000, 2),
    );
}

#[test]
fn the_log_is_judged_by_the_family_in_the_header() {
    let l = full_log(Family::Ixgbe);
    // An ixgbe log under an igb header: its API is no igb field.
    let map = regmap(Family::Igb);
    let mut h = header_for(Family::Igb, map, PCI_VENDOR_ID_INTEL, 0x10ca, 1);
    let s = DeviceState {
        queue_pairs: map.max_queue_pairs,
        ..DeviceState::default()
    };
    let pf = PfState {
        mbx: Some(l),
        admin: None,
    };
    let mut b = vec![0u8; MAX_FRAME_LEN];
    let n = write_state_frame(&mut b, h, map, &s, &pf).unwrap();
    assert_eq!(
        decode_frame(&b[..n]).unwrap_err(),
        StreamError::Malformed {
            field: "PF_MBX api presence (igb)",
            value: 1,
            expected: 0
        }
    );
    // A family no code knows: nothing to judge the log by.
    h.family = 3;
    let n = write_state_frame(&mut b, h, map, &s, &pf).unwrap();
    assert_eq!(
        decode_frame(&b[..n]).unwrap_err(),
        StreamError::Malformed {
            field: "PF_MBX family",
            value: 3,
            expected: 2
        }
    );
}

/// One request a guest may send, and whether the PF ACKed it.
fn request() -> impl Strategy<Value = ([u32; MBX_WORDS], bool)> {
    let kind = prop_oneof![
        Just(msg::RESET),
        Just(msg::SET_MAC_ADDR),
        Just(msg::SET_MULTICAST),
        Just(msg::SET_VLAN),
        Just(msg::SET_LPE),
        Just(msg::SET_PROMISC_OR_MACVLAN),
        Just(msg::API_NEGOTIATE),
        Just(msg::GET_QUEUES),
        Just(msg::UPDATE_XCAST_MODE),
        Just(msg::IPSEC_ADD),
        Just(msg::FEATURES_NEGOTIATE),
        0u32..0x20,
    ];
    let info = prop_oneof![0u32..20, any::<u8>().prop_map(u32::from)];
    let w1 = prop_oneof![word(), mac().prop_map(|m| mac_words(&m).0)];
    let w2 = prop_oneof![any::<u32>(), mac().prop_map(|m| mac_words(&m).1)];
    (
        kind,
        info,
        w1,
        w2,
        any::<[u32; 4]>(),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(kind, info, w1, w2, rest, ack)| {
            let mut r = [0u32; MBX_WORDS];
            r[0] = msg::word0(kind, info);
            r[1] = w1;
            r[2] = w2;
            r[3..7].copy_from_slice(&rest);
            (r, ack)
        })
}

proptest! {
    /// What the snoop builds from any traffic the PF ACKed, the decoder
    /// takes back as it is; a source's own log is refused only for state
    /// it does not carry (which the source refuses to save), by name.
    #[test]
    fn every_log_the_snoop_builds_decodes(
        ixgbe in any::<bool>(),
        reqs in prop::collection::vec(request(), 0..40),
    ) {
        let family = if ixgbe { Family::Ixgbe } else { Family::Igb };
        let mut l = MbxLog::default();
        for (r, ack) in &reqs {
            let kind = msg::kind(r[0]);
            l.observe(family, r, kind | if *ack { msg::ACK } else { msg::NACK });
            // Within range, or state it does not carry, refused by name
            // (the source refuses to save it).
            let want = match l.uncarried() {
                None => Ok(()),
                Some(u) => Err(u.field()),
            };
            let got = l.check(family).map_err(|e| match e {
                StreamError::Malformed { field, .. } => field,
                _ => "another error",
            });
            prop_assert_eq!(got, want, "{:?} after {:#x?}", family, r);
        }
        match l.uncarried() {
            None => {
                prop_assert_eq!(MbxLog::decode(family, &encoded(&l)), Ok(l));
                replays_cleanly(family, &l)?;
            }
            Some(u) => {
                let named = matches!(MbxLog::decode(family, &encoded(&l)),
                    Err(StreamError::Malformed { field, .. }) if field == u.field());
                prop_assert!(named, "{:?} refused by name", u);
            }
        }
    }
}
