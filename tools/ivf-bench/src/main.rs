// SPDX-License-Identifier: GPL-2.0

//! `make bench`: figures that hold on any machine. Stream bytes per family
//! for 1 and for all queue pairs, and the MMIO reads, writes and polls of
//! quiesce, save, load and resume, counted by running the very HAL code the
//! module runs (rust/common/src/hal.rs) over a register model of each
//! family's VF, with enable handshakes that take 3 reads.
//!
//! `ivf-bench steps`, in the test VM, times each migration step of the
//! module against the floor its MMIO sets ([`steps`]).
//!
//! `ivf-bench rx-trap`, run in the test VM (`tools/vm/run -- target/release/ivf-bench
//! rx-trap`), measures instead what trapping a VF's RX tail page for dirty
//! tracking costs the guest's reception ([`rxtrap`]).

mod model;
mod rxtrap;
mod steps;

use std::process::ExitCode;

use ivf_common::hal::{self, DeviceState};
use ivf_common::ids::Family;
use ivf_common::regs::{regmap, RegMap, DCTL_ENABLE};
use ivf_common::state::{header_for, write_compat_frame, write_state_frame, MAX_FRAME_LEN};
use model::VfModel;

/// A VF with every queue pair configured and running, `pending` TX
/// descriptors posted per queue.
fn running(map: &'static RegMap, pending: u32) -> VfModel {
    let mut m = VfModel::new(map);
    for q in 0..map.max_queue_pairs {
        m.set(map.rxq(map.rx.bal, q), 0x1000_0000 + q * 0x1000);
        m.set(map.rxq(map.rx.len, q), 4096);
        m.set(map.rxq(map.rx.tail, q), 255);
        m.set(map.rxq(map.rx.dctl, q), DCTL_ENABLE);
        m.set(map.txq(map.tx.bal, q), 0x2000_0000 + q * 0x1000);
        m.set(map.txq(map.tx.len, q), 4096);
        m.set(map.txq(map.tx.tail, q), pending);
        m.set(map.txq(map.tx.dctl, q), DCTL_ENABLE);
    }
    m.set(map.eims, map.vector_mask());
    m
}

fn frame_bytes(family: Family, map: &RegMap, queue_pairs: u32) -> (usize, usize) {
    let h = header_for(family, map, 0x8086, 0x1000, 1);
    let mut buf = [0u8; MAX_FRAME_LEN];
    let compat = write_compat_frame(&mut buf, h, map).expect("fits");
    let st = DeviceState {
        queue_pairs,
        ..DeviceState::default()
    };
    let state = write_state_frame(
        &mut buf,
        h,
        map,
        &st,
        &ivf_common::state::PfState {
            mbx: Some(Default::default()),
            admin: Some(Default::default()),
        },
    )
    .expect("fits");
    (compat, state)
}

const USAGE: &str = "\
usage: ivf-bench                 figures of the migration core (any machine)
       ivf-bench rx-trap [--vf BDF] [--frames N]
                                 RX tail trap cost, in the test VM:
                                 tools/vm/run -- target/release/ivf-bench rx-trap
       ivf-bench steps [--migrations N]
                                 each migration step's time, MMIO floor and parts,
                                 in the test VM: tools/vm/run --vfs 2 -- target/release/ivf-bench steps";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            model_figures();
            ExitCode::SUCCESS
        }
        Some("rx-trap") => {
            let opts = match rx_trap_options(&args[1..]) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("ivf-bench: {e}\n{USAGE}");
                    return ExitCode::from(2);
                }
            };
            match rxtrap::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ivf-bench rx-trap: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("steps") => {
            let mut opts = steps::Options::default();
            match args.get(1..).unwrap_or_default() {
                [] => {}
                [flag, n] if flag == "--migrations" => match n.parse() {
                    Ok(n) if n > 0 => opts.migrations = n,
                    _ => {
                        eprintln!("ivf-bench: --migrations: '{n}' is not a positive number");
                        return ExitCode::from(2);
                    }
                },
                other => {
                    eprintln!("ivf-bench steps: unknown arguments {other:?}\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
            match steps::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ivf-bench steps: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("ivf-bench: unknown command '{other}'\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn rx_trap_options(args: &[String]) -> Result<rxtrap::Options, String> {
    let mut opts = rxtrap::Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--vf" => opts.vf = Some(value()?.parse()?),
            "--frames" => {
                let v = value()?;
                opts.frames = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--frames: '{v}' is not a positive number"))?;
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(opts)
}

fn model_figures() {
    println!("intel_vf_vfio_pci figures (counts, not timings: they hold on any machine)");
    println!();
    println!("stream bytes (compatibility frame + state frame)");
    println!(
        "{:<7} {:>12} {:>18} {:>18}",
        "family", "compat", "state, 1 pair", "state, all pairs"
    );
    for family in Family::ALL {
        let map = regmap(family);
        let (c, one) = frame_bytes(family, map, 1);
        let (_, all) = frame_bytes(family, map, map.max_queue_pairs);
        println!(
            "{:<7} {:>12} {:>18} {:>12} ({} pairs)",
            family.name(),
            c,
            c + one,
            c + all,
            map.max_queue_pairs
        );
    }
    println!();
    println!("MMIO accesses per sequence, all queue pairs in use, 4 TX descriptors pending");
    println!(
        "{:<7} {:<9} {:>6} {:>7} {:>6}",
        "family", "sequence", "reads", "writes", "polls"
    );
    for family in Family::ALL {
        let map = regmap(family);
        let mut src = running(map, 4);
        let rec = hal::quiesce(&mut src, map).expect("quiesce");
        let q = (src.reads, src.writes, src.delays);
        let saved = hal::save(&mut src, map, &rec);
        let s = (src.reads - q.0, src.writes - q.1, src.delays - q.2);
        let mut dst = VfModel::new(map);
        hal::load(&mut dst, map, &saved).expect("load");
        let l = (dst.reads, dst.writes, dst.delays);
        hal::resume(&mut dst, map, &saved.record()).expect("resume");
        let r = (dst.reads - l.0, dst.writes - l.1, dst.delays - l.2);
        for (name, (reads, writes, polls)) in
            [("quiesce", q), ("save", s), ("load", l), ("resume", r)]
        {
            println!(
                "{:<7} {:<9} {:>6} {:>7} {:>6}",
                family.name(),
                name,
                reads,
                writes,
                polls
            );
        }
        assert!(src.forbidden_reads.is_empty() && dst.forbidden_reads.is_empty());
    }
    println!();
    println!(
        "polls: delays of {} us between reads while an enable bit settles or TX drains;",
        hal::POLL_DELAY_US
    );
    println!("the model settles in 3 reads and sends one descriptor per head read.");
}
