// SPDX-License-Identifier: GPL-2.0

//! Writes the `stream_decode` seeds: real frames from the crate's own
//! encoder, so the fuzzer starts from streams that pass every check.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds -- fuzz/corpus`
//!
//! (The `mailbox_snoop` and `tracker` seeds are inputs the fuzzer found,
//! minimized with `cargo fuzz cmin`: their bytes mean something only to
//! `arbitrary`.)

use std::path::PathBuf;

use ivf_common::admin::AdminConfig;
use ivf_common::hal::{DeviceState, RxQueue, TxQueue};
use ivf_common::ids::{Family, PCI_VENDOR_ID_INTEL};
use ivf_common::mbx::{msg, MbxLog, MBX_WORDS};
use ivf_common::regs::{regmap, DCTL_ENABLE};
use ivf_common::state::{
    decode_frame, header_for, write_compat_frame, write_state_frame, PfState, MAX_FRAME_LEN,
};
use ivf_common::stream::SECTION_MANDATORY;

#[path = "../../rust/common/tests/support/stream.rs"]
mod stream_build;
use stream_build::build;

fn req(w: &[u32]) -> [u32; MBX_WORDS] {
    let mut r = [0; MBX_WORDS];
    r[..w.len()].copy_from_slice(w);
    r
}

/// A running VF's state, as in rust/common/tests/ixgbe_vf_model.rs.
fn state(family: Family) -> DeviceState {
    let map = regmap(family);
    let mut s = DeviceState {
        queue_pairs: map.max_queue_pairs,
        ..DeviceState::default()
    };
    for q in 0..s.queue_pairs as usize {
        let q32 = q as u32;
        s.rx[q] = RxQueue {
            bal: 0x1000_0000 + q32 * 0x1000,
            bah: 1,
            len: 4096,
            srrctl: 0x0200_0002,
            head: 17 + q32,
            tail: 200 + q32,
            dctl: DCTL_ENABLE | 0x20,
        };
        s.tx[q] = TxQueue {
            bal: 0x2000_0000 + q32 * 0x1000,
            bah: 0,
            len: 4096,
            head: 5,
            tail: 9,
            dctl: DCTL_ENABLE,
            wbal: 0x3000_0001,
            wbah: 0,
        };
    }
    s.irq.eims = 0b101;
    s.irq.eiac = 0b011;
    s.irq.ivar[0] = 0x8180_8081;
    s.irq.ivar_misc = 0x82;
    s.irq.eitr[0] = 0x1f0;
    s
}

/// What the PF holds after a typical VF driver session.
fn pf(family: Family) -> PfState {
    let mut log = MbxLog::default();
    for (w, kind) in [
        (&[msg::RESET][..], msg::RESET),
        (&[msg::API_NEGOTIATE, 6], msg::API_NEGOTIATE),
        (&[msg::SET_MAC_ADDR, 0x5634_1202, 0x9a78], msg::SET_MAC_ADDR),
        (&[msg::SET_LPE, 9018], msg::SET_LPE),
        (
            &[msg::SET_MULTICAST | 3 << 16, 0x0bbb_0aaa, 0x0ccc],
            msg::SET_MULTICAST,
        ),
        (&[msg::SET_VLAN | 1 << 16, 10], msg::SET_VLAN),
        (&[msg::UPDATE_XCAST_MODE, 2], msg::UPDATE_XCAST_MODE),
    ] {
        log.observe(family, &req(w), kind | msg::ACK);
    }
    PfState {
        mbx: Some(log),
        admin: Some(AdminConfig {
            mac: [2, 0, 0, 0, 0, 1],
            vlan: 42,
            qos: 3,
            spoofchk: true,
            link_state: 1,
            vlan_proto: 0x0081,
            max_tx_rate: 100,
            ..AdminConfig::default()
        }),
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/corpus".into()))
        .join("stream_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, b: &[u8]| {
        std::fs::write(dir.join(name), b).unwrap();
        println!("{} ({} bytes)", dir.join(name).display(), b.len());
    };
    let mut fd = Vec::new();
    for (family, device) in [(Family::Igb, 0x10ca), (Family::Ixgbe, 0x10ed)] {
        let map = regmap(family);
        let h = header_for(family, map, PCI_VENDOR_ID_INTEL, device, 1);
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let n = write_compat_frame(&mut buf, h, map).unwrap();
        write(&format!("compat-{}", family.name()), &buf[..n]);
        let compat = buf[..n].to_vec();
        let n = write_state_frame(&mut buf, h, map, &state(family), &pf(family)).unwrap();
        let f = decode_frame(&buf[..n]).expect("own frame decodes");
        assert_eq!(f.state, Some(state(family)));
        write(&format!("state-{}", family.name()), &buf[..n]);
        if family == Family::Ixgbe {
            // The data fd as a destination reads it: compat, then state.
            fd.extend_from_slice(&compat);
            fd.extend_from_slice(&buf[..n]);
        }
        // A source whose PF does not report the administrator's settings.
        let nopf = PfState {
            admin: None,
            ..pf(family)
        };
        let n = write_state_frame(&mut buf, h, map, &state(family), &nopf).unwrap();
        decode_frame(&buf[..n]).expect("own frame decodes");
        write(&format!("state-noadmin-{}", family.name()), &buf[..n]);
    }
    write("datafd-ixgbe", &fd);
    // A bare stream: an unknown optional section, an empty one.
    let h = header_for(
        Family::Igb,
        regmap(Family::Igb),
        PCI_VENDOR_ID_INTEL,
        0x10ca,
        1,
    );
    let bare = build(
        h,
        &[(0x7777, 0, vec![9; 5]), (0x0001, SECTION_MANDATORY, vec![])],
    );
    write("sections-bare", &bare);
}
