// SPDX-License-Identifier: GPL-2.0

//! Properties of the v1 stream: round trip, every single-byte corruption and
//! every truncation rejected, compatibility rules.

use ivf_common::ids::Family;
use ivf_common::state::FrameKind;
use ivf_common::stream::{
    self, check_compat, parse, DeviceCaps, Header, StreamError, HEADER_LEN, SECTION_HEADER_LEN,
    SECTION_MANDATORY,
};
use proptest::prelude::*;

mod support;
use support::stream::build;

fn header_strategy() -> impl Strategy<Value = Header> {
    (
        any::<bool>(),
        any::<u16>(),
        any::<u8>(),
        0u16..9,
        any::<u32>(),
    )
        .prop_map(|(igb, device, rev, qp, feat)| {
            let family = if igb { Family::Igb } else { Family::Ixgbe };
            Header::new(family, 0x8086, device, rev, qp, feat)
        })
}

fn sections_strategy() -> impl Strategy<Value = Vec<(u16, u16, Vec<u8>)>> {
    prop::collection::vec(
        (
            any::<u16>(),
            prop_oneof![Just(0u16), Just(SECTION_MANDATORY)],
            prop::collection::vec(any::<u8>(), 0..96),
        ),
        0..6,
    )
}

proptest! {
    #[test]
    fn round_trip(h in header_strategy(), secs in sections_strategy()) {
        let bytes = build(h, &secs);
        let (got, sections) = parse(&bytes).expect("own stream parses");
        prop_assert_eq!(got.family, h.family);
        prop_assert_eq!(got.device, h.device);
        prop_assert_eq!(got.queue_pairs, h.queue_pairs);
        prop_assert_eq!(got.features, h.features);
        prop_assert_eq!(got.total_len as usize, bytes.len());
        let decoded: Vec<(u16, u16, Vec<u8>)> =
            sections.map(|s| (s.tag, s.flags, s.payload.to_vec())).collect();
        prop_assert_eq!(decoded, secs);
    }

    #[test]
    fn every_single_byte_corruption_is_rejected(
        h in header_strategy(),
        secs in sections_strategy(),
        pick in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut bytes = build(h, &secs);
        let i = pick.index(bytes.len());
        bytes[i] ^= xor;
        prop_assert!(parse(&bytes).is_err(), "flip of byte {} by {:#x} accepted", i, xor);
    }

    #[test]
    fn every_truncation_is_rejected(h in header_strategy(), secs in sections_strategy()) {
        let bytes = build(h, &secs);
        for n in 0..bytes.len() {
            let err = parse(&bytes[..n]).expect_err("truncated stream accepted");
            prop_assert!(
                matches!(err, StreamError::Truncated { .. }),
                "truncation at {} gave {:?}", n, err
            );
        }
    }
}

#[test]
fn exhaustive_byte_corruption_of_a_real_stream() {
    let h = Header::new(Family::Igb, 0x8086, 0x10ca, 1, 2, 0);
    let bytes = build(
        h,
        &[
            (1, SECTION_MANDATORY, (0u8..200).collect()),
            (9, 0, vec![7; 5]),
        ],
    );
    for i in 0..bytes.len() {
        for xor in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= xor;
            assert!(parse(&b).is_err(), "byte {i} ^ {xor:#x} accepted");
        }
    }
}

#[test]
fn errors_have_distinct_documented_errnos() {
    let h = Header::new(Family::Igb, 0x8086, 0x10ca, 1, 2, 0);
    let good = build(h, &[(1, SECTION_MANDATORY, vec![1, 2, 3])]);

    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(parse(&magic).unwrap_err(), StreamError::BadMagic);
    assert_eq!(StreamError::BadMagic.errno(), stream::errno::EINVAL);

    let future = build(Header { major: 2, ..h }, &[]);
    let e = parse(&future).unwrap_err();
    assert_eq!(
        e,
        StreamError::UnsupportedMajor {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(e.errno(), stream::errno::EPROTONOSUPPORT);

    let newer_minor = build(Header { minor: 7, ..h }, &[(0x7777, 0, vec![9; 4])]);
    assert!(
        parse(&newer_minor).is_ok(),
        "a newer minor of our major is readable"
    );

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(parse(&flipped).unwrap_err().errno(), stream::errno::EBADMSG);

    let e = parse(&good[..good.len() - 1]).unwrap_err();
    assert_eq!(e.errno(), stream::errno::EMSGSIZE);
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(parse(&longer).unwrap_err().errno(), stream::errno::EFBIG);

    let errnos = [
        StreamError::Truncated { need: 1, have: 0 }.errno(),
        StreamError::TooLarge { len: 1, max: 0 }.errno(),
        StreamError::BadMagic.errno(),
        StreamError::UnsupportedMajor {
            found: 2,
            supported: 1,
        }
        .errno(),
        StreamError::BadChecksum {
            stored: 0,
            computed: 1,
        }
        .errno(),
        StreamError::Malformed {
            field: "x",
            value: 0,
            expected: 1,
        }
        .errno(),
        StreamError::UnknownMandatorySection { tag: 1 }.errno(),
        StreamError::WrongDevice {
            field: "family",
            stream: 1,
            device: 2,
        }
        .errno(),
        StreamError::TooManyQueues {
            stream: 3,
            device: 2,
        }
        .errno(),
        StreamError::MissingFeatures { missing: 1 }.errno(),
        StreamError::UnexpectedFrame {
            index: 1,
            found: FrameKind::State,
            expected: Some(FrameKind::Compat),
        }
        .errno(),
        StreamError::NoStateFrame {
            frames: 1,
            expected: 2,
        }
        .errno(),
    ];
    for (i, a) in errnos.iter().enumerate() {
        for b in &errnos[i + 1..] {
            assert_ne!(a, b, "two rejections share errno {a}");
        }
    }
}

#[test]
fn section_count_and_layout_are_checked() {
    let h = Header::new(Family::Igb, 0x8086, 0x10ca, 1, 2, 0);
    // A stream that claims two sections but holds one, with a valid CRC.
    let bytes = build(
        Header {
            section_count: 0,
            ..h
        },
        &[(1, 0, vec![0; 4])],
    );
    let mut lie = bytes.clone();
    lie[22] = 2;
    stream::reseal(&mut lie);
    assert!(matches!(
        parse(&lie).unwrap_err(),
        StreamError::Malformed {
            field: "section_count",
            value: 2,
            expected: 1
        }
    ));
}

#[test]
fn reseal_makes_an_edited_frame_check_again() {
    let h = Header::new(Family::Igb, 0x8086, 0x10ca, 1, 2, 0);
    let mut bytes = build(h, &[(1, 0, vec![7; 4])]);
    bytes[HEADER_LEN + SECTION_HEADER_LEN] = 8;
    assert!(matches!(
        parse(&bytes).unwrap_err(),
        StreamError::BadChecksum { .. }
    ));
    stream::reseal(&mut bytes);
    let (_, mut sections) = parse(&bytes).expect("resealed frame parses");
    assert_eq!(sections.next().unwrap().payload, &[8, 7, 7, 7]);
    // Too short to hold a header: left alone.
    let mut short = [1u8; 8];
    stream::reseal(&mut short);
    assert_eq!(short, [1; 8]);
}

#[test]
fn compatibility_rules() {
    let caps = DeviceCaps {
        family: Family::Igb,
        vendor: 0x8086,
        device: 0x10ca,
        revision: 1,
        max_queue_pairs: 2,
        features: 0b11,
    };
    let h = Header::new(Family::Igb, 0x8086, 0x10ca, 1, 2, 0b01);
    assert_eq!(check_compat(&h, &caps), Ok(()));
    let other = Header::new(Family::Ixgbe, 0x8086, 0x10ed, 1, 2, 0);
    assert_eq!(
        check_compat(&other, &caps).unwrap_err().errno(),
        stream::errno::ENODEV
    );
    let rev = Header { revision: 2, ..h };
    assert_eq!(
        check_compat(&rev, &caps),
        Err(StreamError::WrongDevice {
            field: "revision",
            stream: 2,
            device: 1
        })
    );
    assert_eq!(
        check_compat(&rev, &caps).unwrap_err().to_string(),
        "stream is for another device: revision 0x2 in stream, 0x1 here"
    );
    let many = Header {
        queue_pairs: 4,
        ..h
    };
    assert_eq!(
        check_compat(&many, &caps),
        Err(StreamError::TooManyQueues {
            stream: 4,
            device: 2
        })
    );
    let feat = Header {
        features: 0b100,
        ..h
    };
    assert_eq!(
        check_compat(&feat, &caps),
        Err(StreamError::MissingFeatures { missing: 0b100 })
    );
}
