// SPDX-License-Identifier: GPL-2.0

//! The frame grammar a destination enforces: a resume accepts exactly what a
//! source writes (one compatibility frame, then one state frame, each known
//! section once, the DEVICE shape and revision of the destination), and
//! refuses everything else with its own error. Every frame here is built by
//! the crate's own writers.

use ivf_common::hal::DeviceState;
use ivf_common::ids::Family;
use ivf_common::regs::{regmap, RegMap, IGB, IXGBE};
use ivf_common::state::{
    decode_frame, header_for, next_frame, section_name, write_compat_frame, write_state_frame,
    DeviceShape, Frame, FrameKind, FrameSequence, PfState, COMPAT_FRAME_LEN, MAX_FRAME_LEN,
    TAG_DEVICE, TAG_IRQ, TAG_PF_ADMIN, TAG_PF_MBX, TAG_QUEUES,
};
use ivf_common::stream::{errno, DeviceCaps, Header, StreamError, SECTION_MANDATORY};

mod support;
use support::stream::{build, sections, Section};

const IGB_DEVICE: u16 = 0x10ca;
const IXGBE_DEVICE: u16 = 0x10ed;
const REVISION: u8 = 1;

fn device_id(family: Family) -> u16 {
    match family {
        Family::Igb => IGB_DEVICE,
        Family::Ixgbe => IXGBE_DEVICE,
    }
}

fn header(family: Family) -> Header {
    header_for(family, regmap(family), 0x8086, device_id(family), REVISION)
}

/// What the kernel's resume file knows of its device.
fn caps(family: Family) -> DeviceCaps {
    DeviceCaps {
        family,
        vendor: 0x8086,
        device: device_id(family),
        revision: REVISION,
        max_queue_pairs: regmap(family).max_queue_pairs as u16,
        features: 0,
    }
}

/// What `hal::save` gives: every queue pair of the family.
fn saved(map: &RegMap) -> DeviceState {
    let mut s = DeviceState {
        queue_pairs: map.max_queue_pairs,
        ..DeviceState::default()
    };
    s.rx[0].bal = 0x1234_5000;
    s.tx[1].tail = 7;
    s.irq.eims = 0b11;
    s.irq.ivar[0] = 0x8180;
    s.irq.eitr[2] = 0x104;
    s
}

/// What the kernel's `save_state` carries: the mailbox log always, the
/// administrator's settings when the PF reports them.
fn pf(admin: bool) -> PfState {
    PfState {
        mbx: Some(Default::default()),
        admin: admin.then(Default::default),
    }
}

fn compat_frame(family: Family) -> Vec<u8> {
    let mut b = vec![0u8; COMPAT_FRAME_LEN];
    let n = write_compat_frame(&mut b, header(family), regmap(family)).unwrap();
    b.truncate(n);
    b
}

fn state_frame_with(h: Header, map: &RegMap, s: &DeviceState, pf: &PfState) -> Vec<u8> {
    let mut b = vec![0u8; MAX_FRAME_LEN];
    let n = write_state_frame(&mut b, h, map, s, pf).unwrap();
    b.truncate(n);
    b
}

fn state_frame(family: Family) -> Vec<u8> {
    let map = regmap(family);
    state_frame_with(header(family), map, &saved(map), &pf(true))
}

/// The state frame of `family` with its sections edited by `edit`.
fn forged_state(family: Family, edit: impl FnOnce(&mut Vec<Section>)) -> Vec<u8> {
    let mut secs = sections(&state_frame(family));
    edit(&mut secs);
    build(header(family), &secs)
}

fn device_payload(queue_pairs: u32, vectors: u32, ivar_count: u32) -> Vec<u8> {
    [queue_pairs, vectors, ivar_count]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn count_error(tag: u16, value: u64) -> StreamError {
    let field = match tag {
        TAG_DEVICE => "DEVICE section count",
        TAG_QUEUES => "QUEUES section count",
        TAG_IRQ => "IRQ section count",
        TAG_PF_MBX => "PF_MBX section count",
        TAG_PF_ADMIN => "PF_ADMIN section count",
        _ => unreachable!(),
    };
    StreamError::Malformed {
        field,
        value,
        expected: 1,
    }
}

fn decode(b: &[u8]) -> Frame {
    decode_frame(b).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// The kernel's resume file (rust/lm.rs `check_frames` and `load`): the
/// bytes through [`FrameSequence::feed`], all of them consumed, then
/// whether the state frame came; the state frame is what is loaded.
fn resume(bytes: &[u8], family: Family) -> Result<Frame, StreamError> {
    let mut seq = FrameSequence::new(DeviceShape::of(regmap(family)));
    let mut pos = 0;
    seq.feed(bytes, &mut pos, &caps(family))?;
    assert_eq!(pos, bytes.len(), "every frame here is complete");
    seq.finish()?;
    let mut state = None;
    let mut at = 0;
    while at < bytes.len() {
        let (f, len) = next_frame(&bytes[at..])?;
        if f.state.is_some() {
            state = Some(f);
        }
        at += len;
    }
    Ok(state.expect("finish() says the state frame came"))
}

fn cat(frames: &[&[u8]]) -> Vec<u8> {
    frames.concat()
}

// ---- the positive case ----

#[test]
fn what_a_source_writes_is_accepted() {
    for family in Family::ALL {
        let map = regmap(family);
        for admin in [true, false] {
            let c = compat_frame(family);
            let s = state_frame_with(header(family), map, &saved(map), &pf(admin));
            let (cf, sf) = (decode(&c), decode(&s));
            assert_eq!(cf.kind(), FrameKind::Compat);
            assert_eq!(sf.kind(), FrameKind::State);
            assert_eq!(cf.shape, DeviceShape::of(map));
            assert_eq!(sf.state, Some(saved(map)));
            assert_eq!(sf.pf, pf(admin));
            let mut seq = FrameSequence::new(DeviceShape::of(map));
            assert_eq!(
                seq.finish(),
                Err(StreamError::NoStateFrame {
                    frames: 0,
                    expected: 2
                })
            );
            assert_eq!(seq.accept(&cf), Ok(()));
            assert!(!seq.complete());
            assert_eq!(seq.accept(&sf), Ok(()));
            assert!(seq.complete());
            assert_eq!(seq.frames(), 2);
            assert_eq!(seq.finish(), Ok(()));
            let got = resume(&cat(&[&c, &s]), family).unwrap();
            assert_eq!(got.state, Some(saved(map)), "{family:?} admin {admin}");
        }
    }
}

#[test]
fn unknown_optional_sections_are_skipped_in_both_frames() {
    // A newer minor may add optional sections anywhere.
    let extra = (0x7777, 0, b"from a newer minor".to_vec());
    let h = Header {
        minor: 3,
        ..header(Family::Igb)
    };
    let mut c = sections(&compat_frame(Family::Igb));
    c.insert(0, extra.clone());
    let mut s = sections(&state_frame(Family::Igb));
    s.insert(2, extra.clone());
    s.push(extra);
    let bytes = cat(&[&build(h, &c), &build(h, &s)]);
    let got = resume(&bytes, Family::Igb).unwrap();
    assert_eq!(got.state, Some(saved(&IGB)));
}

#[test]
fn unknown_mandatory_sections_are_refused() {
    let s = forged_state(Family::Igb, |s| {
        s.push((0x7777, SECTION_MANDATORY, vec![1, 2, 3, 4]))
    });
    assert_eq!(
        decode_frame(&s),
        Err(StreamError::UnknownMandatorySection { tag: 0x7777 })
    );
}

// ---- decode_frame: each known section once, what the source always writes ----

#[test]
fn a_known_section_twice_is_refused() {
    for tag in [TAG_DEVICE, TAG_QUEUES, TAG_IRQ, TAG_PF_MBX, TAG_PF_ADMIN] {
        let s = forged_state(Family::Ixgbe, |s| {
            let i = s.iter().position(|x| x.0 == tag).unwrap();
            let dup = s[i].clone();
            s.insert(i + 1, dup);
        });
        let e = decode_frame(&s).unwrap_err();
        assert_eq!(e, count_error(tag, 2), "{} twice", section_name(tag));
        assert_eq!(e.errno(), errno::EPROTO);
        // Not only next to each other: anywhere in the frame.
        let s = forged_state(Family::Ixgbe, |s| {
            let i = s.iter().position(|x| x.0 == tag).unwrap();
            let dup = s[i].clone();
            s.push(dup);
        });
        assert_eq!(
            decode_frame(&s),
            Err(count_error(tag, 2)),
            "{} at the end",
            section_name(tag)
        );
    }
    // In a compatibility frame too.
    let mut c = sections(&compat_frame(Family::Igb));
    c.push(c[0].clone());
    assert_eq!(
        decode_frame(&build(header(Family::Igb), &c)),
        Err(count_error(TAG_DEVICE, 2))
    );
    assert_eq!(
        count_error(TAG_QUEUES, 2).to_string(),
        "malformed stream: QUEUES section count is 2, expected 1"
    );
}

#[test]
fn a_state_frame_without_what_a_source_always_writes_is_refused() {
    for tag in [TAG_DEVICE, TAG_QUEUES, TAG_IRQ, TAG_PF_MBX] {
        let s = forged_state(Family::Igb, |s| s.retain(|x| x.0 != tag));
        assert_eq!(
            decode_frame(&s),
            Err(count_error(tag, 0)),
            "no {}",
            section_name(tag)
        );
    }
    // PF_ADMIN is the one a source may lack (its PF does not report settings).
    let s = forged_state(Family::Igb, |s| s.retain(|x| x.0 != TAG_PF_ADMIN));
    assert_eq!(decode(&s).pf.admin, None);
    // The writer without a mailbox log: not what a source writes.
    let s = state_frame_with(
        header(Family::Igb),
        &IGB,
        &saved(&IGB),
        &PfState {
            mbx: None,
            admin: Some(Default::default()),
        },
    );
    assert_eq!(decode_frame(&s), Err(count_error(TAG_PF_MBX, 0)));
}

#[test]
fn a_frame_with_any_state_section_is_a_state_frame() {
    // DEVICE plus one state section: refused for the first one missing.
    let all = sections(&state_frame(Family::Igb));
    let device = all[0].clone();
    for (tag, missing) in [
        (TAG_QUEUES, TAG_IRQ),
        (TAG_IRQ, TAG_QUEUES),
        (TAG_PF_MBX, TAG_QUEUES),
        (TAG_PF_ADMIN, TAG_QUEUES),
    ] {
        let one = all.iter().find(|x| x.0 == tag).unwrap().clone();
        let f = build(header(Family::Igb), &[device.clone(), one]);
        assert_eq!(
            decode_frame(&f),
            Err(count_error(missing, 0)),
            "DEVICE + {}",
            section_name(tag)
        );
    }
    // No DEVICE at all: neither kind of frame.
    assert_eq!(
        decode_frame(&build(header(Family::Igb), &[])),
        Err(count_error(TAG_DEVICE, 0))
    );
}

#[test]
fn state_sections_hold_what_the_device_section_says() {
    // Fewer queue pairs than DEVICE: hal::save always saves them all.
    let short = DeviceState {
        queue_pairs: 1,
        ..saved(&IGB)
    };
    let s = state_frame_with(header(Family::Igb), &IGB, &short, &pf(true));
    assert_eq!(
        decode_frame(&s),
        Err(StreamError::Malformed {
            field: "QUEUES queue pair count",
            value: 1,
            expected: 2
        })
    );
    // A DEVICE section that disagrees with IRQ's counts.
    for (device, err) in [
        (
            device_payload(2, 3, 2),
            StreamError::Malformed {
                field: "IRQ IVAR count",
                value: 1,
                expected: 2,
            },
        ),
        (
            device_payload(2, 4, 1),
            StreamError::Malformed {
                field: "IRQ vector count",
                value: 3,
                expected: 4,
            },
        ),
        (
            device_payload(1, 3, 1),
            StreamError::Malformed {
                field: "QUEUES queue pair count",
                value: 2,
                expected: 1,
            },
        ),
    ] {
        let s = forged_state(Family::Igb, |s| s[0].2 = device.clone());
        assert_eq!(decode_frame(&s), Err(err));
        assert_eq!(err.errno(), errno::EPROTO);
    }
}

// ---- FrameSequence: one compatibility frame, one state frame, nothing else ----

#[test]
fn the_first_frame_must_be_the_compatibility_frame() {
    let s = state_frame(Family::Igb);
    let mut seq = FrameSequence::new(DeviceShape::of(&IGB));
    let e = seq.accept(&decode(&s)).unwrap_err();
    assert_eq!(
        e,
        StreamError::UnexpectedFrame {
            index: 1,
            found: FrameKind::State,
            expected: Some(FrameKind::Compat),
        }
    );
    assert_eq!(e.errno(), errno::EILSEQ);
    assert_eq!(
        e.to_string(),
        "frame 1 is a state frame, expected a compatibility frame"
    );
    // A refusal changes nothing.
    assert_eq!(seq.frames(), 0);
    assert_eq!(resume(&s, Family::Igb), Err(e));
}

#[test]
fn the_second_frame_must_be_the_state_frame() {
    let c = compat_frame(Family::Igb);
    let e = StreamError::UnexpectedFrame {
        index: 2,
        found: FrameKind::Compat,
        expected: Some(FrameKind::State),
    };
    assert_eq!(resume(&cat(&[&c, &c]), Family::Igb), Err(e));
    assert_eq!(
        e.to_string(),
        "frame 2 is a compatibility frame, expected a state frame"
    );
}

#[test]
fn nothing_follows_the_state_frame() {
    let (c, s) = (compat_frame(Family::Igb), state_frame(Family::Igb));
    for (third, kind) in [(&c, FrameKind::Compat), (&s, FrameKind::State)] {
        let e = StreamError::UnexpectedFrame {
            index: 3,
            found: kind,
            expected: None,
        };
        assert_eq!(resume(&cat(&[&c, &s, third]), Family::Igb), Err(e));
        assert_eq!(e.errno(), errno::EILSEQ);
    }
    let mut seq = FrameSequence::new(DeviceShape::of(&IGB));
    seq.accept(&decode(&c)).unwrap();
    seq.accept(&decode(&s)).unwrap();
    let before = seq;
    let e = seq.accept(&decode(&s)).unwrap_err();
    assert_eq!(seq, before, "a refused frame is not counted");
    assert_eq!(seq.finish(), Ok(()));
    assert_eq!(
        e.to_string(),
        "frame 3 is a state frame, expected the end of the stream (it ended with its state frame)"
    );
}

#[test]
fn a_stream_that_ends_without_its_state_frame_is_refused() {
    let c = compat_frame(Family::Ixgbe);
    let e = StreamError::NoStateFrame {
        frames: 1,
        expected: 2,
    };
    assert_eq!(resume(&c, Family::Ixgbe).unwrap_err(), e);
    assert_eq!(e.errno(), errno::ENODATA);
    assert_eq!(
        e.to_string(),
        "stream ended after 1 frames without its state frame, expected 2 frames"
    );
    assert_eq!(
        resume(&[], Family::Ixgbe),
        Err(StreamError::NoStateFrame {
            frames: 0,
            expected: 2
        })
    );
}

#[test]
fn every_frame_has_the_shape_of_the_device() {
    // A stream of another family's shape (same header fields forged).
    let ixgbe = decode(&compat_frame(Family::Ixgbe));
    let mut seq = FrameSequence::new(DeviceShape::of(&IGB));
    let e = seq.accept(&ixgbe).unwrap_err();
    assert_eq!(
        e,
        StreamError::WrongDevice {
            field: "DEVICE queue_pairs",
            stream: 8,
            device: 2,
        }
    );
    assert_eq!(e.errno(), errno::ENODEV);
    assert_eq!(
        e.to_string(),
        "stream is for another device: DEVICE queue_pairs 0x8 in stream, 0x2 here"
    );
    // Each field, in the compatibility frame, under igb's own header.
    for (device, field, stream, here) in [
        (device_payload(2, 4, 1), "DEVICE vectors", 4, 3),
        (device_payload(2, 3, 2), "DEVICE ivar_count", 2, 1),
        (device_payload(1, 3, 1), "DEVICE queue_pairs", 1, 2),
    ] {
        let c = build(
            header(Family::Igb),
            &[(TAG_DEVICE, SECTION_MANDATORY, device)],
        );
        let s = state_frame(Family::Igb);
        assert_eq!(
            resume(&cat(&[&c, &s]), Family::Igb),
            Err(StreamError::WrongDevice {
                field,
                stream,
                device: here
            })
        );
    }
    // And between frames: a right compatibility frame, then a state frame
    // of another shape (consistent in itself).
    let other = RegMap {
        ivar_count: 2,
        ..IGB
    };
    let mut st = saved(&IGB);
    st.irq.ivar[1] = 0x8382;
    let s = state_frame_with(header(Family::Igb), &other, &st, &pf(true));
    assert_eq!(decode(&s).shape.ivar_count, 2);
    assert_eq!(
        resume(&cat(&[&compat_frame(Family::Igb), &s]), Family::Igb),
        Err(StreamError::WrongDevice {
            field: "DEVICE ivar_count",
            stream: 2,
            device: 1
        })
    );
}

#[test]
fn every_frame_has_the_revision_of_the_device() {
    let h = Header {
        revision: REVISION + 1,
        ..header(Family::Ixgbe)
    };
    let mut c = vec![0u8; COMPAT_FRAME_LEN];
    write_compat_frame(&mut c, h, &IXGBE).unwrap();
    let e = StreamError::WrongDevice {
        field: "revision",
        stream: u32::from(REVISION) + 1,
        device: u32::from(REVISION),
    };
    assert_eq!(resume(&c, Family::Ixgbe), Err(e));
    assert_eq!(e.errno(), errno::ENODEV);
    // The state frame's header is checked as well as the first one's.
    let s = state_frame_with(h, &IXGBE, &saved(&IXGBE), &pf(true));
    assert_eq!(
        resume(&cat(&[&compat_frame(Family::Ixgbe), &s]), Family::Ixgbe),
        Err(e)
    );
}

#[test]
fn frame_sequence_is_small_and_copy() {
    fn copy<T: Copy>() {}
    copy::<FrameSequence>();
    assert!(core::mem::size_of::<FrameSequence>() <= 16);
}
