// SPDX-License-Identifier: GPL-2.0

//! `mailbox_snoop`: the PF-channel snoop (`mbx::Snoop`) under any sequence
//! of trapped mailbox-page accesses a guest can make: reads and writes at
//! any offset with any value, taints (accesses the trap cannot follow) and
//! VF resets.
//!
//! Checked after every access: nothing panics; the log changes only when
//! the VF reads the reply to a posted request (never on a write or a
//! taint), and a reset empties it; the log stays within its documented
//! bounds (at most `MAX_MC` multicast hashes, only the documented flags, a
//! fixed `ENCODED_LEN` encoding that decodes back to the same log, or, for
//! PF state the log does not carry, is refused by name).
//!
//! At the end, the canonical form: the replay of the log is bounded (one
//! message per VLAN at most, each within the mailbox) and, through
//! `mbx::replay_log` on a PF that accepts everything (the model of
//! rust/common/tests/pf_channel.rs, reduced), rebuilds the same log; a
//! second snoop watching that replay's own traffic agrees.
//!
//! `IVF_FUZZ_MBX_IGNORED=N` starts the log's count of ignored requests at
//! N, as after a long-running guest's flood of requests the PF accepts and
//! the log does not model.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::{self, ctrl, msg, replay_log, MbxLog, Snoop, MAX_MC, MBX_WORDS};
use ivf_common::regs::{regmap, RegMap};
use libfuzzer_sys::fuzz_target;

#[path = "../../rust/common/tests/support/mod.rs"]
mod support;
use support::mbx::Mailbox;

/// Message types worth hitting often (and a few that are not ours).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Reset,
    SetMac,
    SetMulticast,
    SetVlan,
    SetLpe,
    PromiscOrMacvlan,
    ApiNegotiate,
    GetQueues,
    UpdateXcast,
    IpsecAdd,
    FeaturesNegotiate,
    Other(u16),
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Reset => msg::RESET,
            Kind::SetMac => msg::SET_MAC_ADDR,
            Kind::SetMulticast => msg::SET_MULTICAST,
            Kind::SetVlan => msg::SET_VLAN,
            Kind::SetLpe => msg::SET_LPE,
            Kind::PromiscOrMacvlan => msg::SET_PROMISC_OR_MACVLAN,
            Kind::ApiNegotiate => msg::API_NEGOTIATE,
            Kind::GetQueues => msg::GET_QUEUES,
            Kind::UpdateXcast => msg::UPDATE_XCAST_MODE,
            Kind::IpsecAdd => msg::IPSEC_ADD,
            Kind::FeaturesNegotiate => msg::FEATURES_NEGOTIATE,
            Kind::Other(k) => u32::from(k),
        }
    }
}

/// Where an access lands on the mailbox page.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum At {
    /// Mailbox memory word `n % 17` (one past the end included).
    Word(u8),
    Ctrl,
    /// Any offset, aligned or not.
    Raw(u16),
}

impl At {
    fn off(self, map: &RegMap) -> u32 {
        match self {
            At::Word(n) => map.mbx_mem + 4 * (u32::from(n) % (MBX_WORDS as u32 + 1)),
            At::Ctrl => map.mbx_ctrl,
            At::Raw(o) => u32::from(o),
        }
    }
}

/// A value as a guest (or the PF's reply) would have it.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Value {
    Raw(u32),
    /// Word 0 of a request: type and info.
    Request {
        kind: Kind,
        info: u8,
    },
    /// A reply to what word 0 holds now: its type with ACK/NACK/CTS bits.
    Reply {
        ack: bool,
        nack: bool,
        cts: bool,
    },
    /// Control register bits (REQ, ACK, VFU, ...).
    Ctrl(u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Write(At, Value),
    Read(At, Value),
    Taint,
    Reset,
    /// A whole exchange as a VF driver makes it: words, REQ, reply read.
    Exchange {
        kind: Kind,
        info: u8,
        words: [u32; 3],
        reply: Value,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    ixgbe: bool,
    ops: Vec<Op>,
}

/// `IVF_FUZZ_MBX_IGNORED=N`: the snoop starts with N requests ignored.
fn ignored_start() -> u32 {
    static N: OnceLock<u32> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("IVF_FUZZ_MBX_IGNORED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Replay bound: RESET, API, MAC, LPE, MC, one per VLAN, one per MACVLAN, XCAST.
const MAX_REPLAY: usize = 5 + 4096 + mbx::MAX_MACVLANS + 1;

struct Harness {
    map: &'static RegMap,
    family: Family,
    snoop: Snoop,
    /// What the guest last wrote to mailbox word 0 (for replies).
    word0: u32,
}

impl Harness {
    fn value(&self, v: Value) -> u32 {
        match v {
            Value::Raw(x) => x,
            Value::Request { kind, info } => kind.code() | u32::from(info) << msg::INFO_SHIFT,
            Value::Reply { ack, nack, cts } => {
                let mut r = self.word0 & msg::TYPE_MASK;
                for (on, bit) in [(ack, msg::ACK), (nack, msg::NACK), (cts, msg::CTS)] {
                    if on {
                        r |= bit;
                    }
                }
                r
            }
            Value::Ctrl(b) => u32::from(b),
        }
    }

    fn write(&mut self, off: u32, v: u32) {
        let before = self.snoop.log;
        if off == self.map.mbx_mem {
            self.word0 = v;
        }
        self.snoop.on_write(self.map, off, v);
        assert_eq!(self.snoop.log, before, "a write never changes the log");
    }

    fn read(&mut self, off: u32, v: u32) {
        let before = self.snoop.log;
        let was_pending = self.snoop.in_flight();
        self.snoop.on_read(self.map, self.family, off, v);
        if self.snoop.log != before {
            // Only the reply to a posted request, read from word 0, counts.
            assert!(was_pending && !self.snoop.in_flight());
            assert_eq!(off, self.map.mbx_mem);
            assert!(v & (msg::ACK | msg::NACK) != 0);
        }
    }

    fn op(&mut self, op: &Op) {
        match *op {
            Op::Write(at, v) => {
                let v = self.value(v);
                self.write(at.off(self.map), v);
            }
            Op::Read(at, v) => {
                let v = self.value(v);
                self.read(at.off(self.map), v);
            }
            Op::Taint => {
                let before = self.snoop.log;
                self.snoop.taint();
                assert_eq!(self.snoop.log, before, "a taint never changes the log");
            }
            Op::Reset => {
                self.snoop.reset();
                assert_eq!(self.snoop.log, MbxLog::default());
                assert!(!self.snoop.in_flight());
            }
            Op::Exchange {
                kind,
                info,
                words,
                reply,
            } => {
                let m = self.map;
                let w0 = kind.code() | u32::from(info) << msg::INFO_SHIFT;
                self.write(m.mbx_mem, w0);
                for (i, w) in words.iter().enumerate() {
                    self.write(m.mbx_mem + 4 * (i as u32 + 1), *w);
                }
                self.write(m.mbx_ctrl, ctrl::REQ);
                let r = self.value(reply);
                self.read(m.mbx_mem, r);
            }
        }
        check_bounded(&self.snoop.log);
    }
}

/// The bounds the log documents, after every access.
fn check_bounded(log: &MbxLog) {
    assert!(log.mc_count as usize <= MAX_MC);
    assert!(log.mc[log.mc_count as usize..].iter().all(|h| *h == 0));
    // RESET, and the marks of state the log does not carry (IPsec, igb
    // MAC filters, another request with its type in bits 16..31).
    assert_eq!(log.flags & 0xfff0, 0, "only the documented flags are set");
    // A type only with its flag; the flag may come with type 0, which a
    // forged reply word (type 0 with ACK) makes "accepted".
    assert!(
        log.flags >> 16 == 0 || log.flags & 8 != 0,
        "a type only with its flag"
    );
}

/// The log's canonical forms: bytes, and the messages that rebuild it.
fn check_canonical(family: Family, map: &'static RegMap, log: &MbxLog) {
    let mut enc = [0u8; mbx::ENCODED_LEN];
    log.encode(&mut enc);
    if let Some(u) = log.uncarried() {
        // State the stream cannot carry: the source refuses to save it,
        // and a destination refuses it by name.
        assert!(
            matches!(MbxLog::decode(family, &enc),
                Err(ivf_common::stream::StreamError::Malformed { field, .. }) if field == u.field()),
            "{u:?} refused by name"
        );
        return;
    }
    assert_eq!(MbxLog::decode(family, &enc), Ok(*log), "encode -> decode");

    let mut sent = 0usize;
    let mut rebuilt = MbxLog::default();
    log.replay(family, |m| {
        assert!(m.len >= 1 && m.len <= MBX_WORDS);
        sent += 1;
        assert!(sent <= MAX_REPLAY, "replay is bounded");
        let mut req = [0u32; MBX_WORDS];
        req[..m.len].copy_from_slice(&m.words[..m.len]);
        rebuilt.observe(family, &req, m.kind() | msg::ACK);
        Ok::<(), ()>(())
    })
    .unwrap();
    // Replay restores what the PF holds; the count of ignored requests is
    // the source's own statistic.
    let want = if log.flags & 1 != 0 {
        MbxLog { ignored: 0, ..*log }
    } else {
        MbxLog::default()
    };
    assert_eq!(rebuilt, want, "replay rebuilds the log");

    // The same through the VF mailbox, on a PF that accepts everything,
    // with a snoop watching (as the trap would on that VF).
    let mut pf = AckPf {
        map,
        family,
        mbx: Mailbox::new(map),
        snoop: Snoop::default(),
    };
    let (accepted, n) = replay_log(&mut pf, map, family, log).expect("an accepting PF");
    assert_eq!((accepted, n as usize), (want, sent));
    assert_eq!(pf.snoop.log, want, "a snoop of the replay agrees");
}

/// A PF that ACKs every request (pf_channel.rs's `PfModel` without its
/// filter policy), behind the VF's mailbox registers.
struct AckPf {
    map: &'static RegMap,
    family: Family,
    mbx: Mailbox,
    snoop: Snoop,
}

impl RegIo for AckPf {
    fn read32(&mut self, off: u32) -> u32 {
        let v = self.mbx.read(off).unwrap_or(0);
        self.snoop.on_read(self.map, self.family, off, v);
        v
    }

    fn write32(&mut self, off: u32, v: u32) {
        self.snoop.on_write(self.map, off, v);
        if self.mbx.write(off, v) {
            let kind = self.mbx.mem[0] & msg::TYPE_MASK;
            let mut words = [0; MBX_WORDS];
            words[0] = kind | msg::ACK | msg::CTS;
            self.mbx.ack();
            self.mbx.reply(words);
        }
    }

    fn delay_us(&mut self, _: u32) {}
}

fuzz_target!(|input: Input| {
    let family = if input.ixgbe {
        Family::Ixgbe
    } else {
        Family::Igb
    };
    let map = regmap(family);
    let mut h = Harness {
        map,
        family,
        snoop: Snoop::default(),
        word0: 0,
    };
    // Where a guest that has run for long gets: the count of ignored
    // requests is a u32 that only grows (overflow checks are on, as in the
    // kernel).
    h.snoop.log.ignored = ignored_start();
    for op in &input.ops {
        h.op(op);
    }
    check_canonical(family, map, &h.snoop.log);
});
