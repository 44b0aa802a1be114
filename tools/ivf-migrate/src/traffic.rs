// SPDX-License-Identifier: GPL-2.0

//! The PF side of a migration's traffic: a sender of sequence-numbered
//! frames to the guest at a fixed rate, and a receiver that counts the
//! guest's frames (AF_PACKET on the PF netdev).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ivf_guest::pf::PfPort;
use serde::Serialize;

use crate::SeqLog;

/// What the PF saw of the traffic.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TrafficStats {
    /// Frames the PF sent to the guest.
    pub sent: u64,
    /// The guest's frames the PF received, and their sequence accounting.
    pub from_guest: SeqLog,
}

struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    rx: Mutex<SeqLog>,
}

/// A running PF-side sender and receiver.
pub struct PfTraffic {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The PF's MAC address (the guest sends there).
    pub pf_mac: [u8; 6],
    errors: Arc<Mutex<Vec<String>>>,
}

impl PfTraffic {
    /// Starts sending to `guest_mac` on `iface` at `rate` frames per second
    /// from sequence number `first_seq`, and counting the frames from
    /// `guest_mac`.
    pub fn start(
        iface: &str,
        guest_mac: [u8; 6],
        rate: u32,
        first_seq: u64,
    ) -> Result<PfTraffic, String> {
        let tx = PfPort::open_iface(iface)?;
        let rx = PfPort::open_iface(iface)?;
        let pf_mac = tx.mac;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            rx: Mutex::new(SeqLog::default()),
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        if rate > 0 {
            let sh = shared.clone();
            let errs = errors.clone();
            threads.push(std::thread::spawn(move || {
                let period = Duration::from_secs_f64(1.0 / f64::from(rate));
                let mut next = Instant::now();
                let mut seq = first_seq;
                while !sh.stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep(next - now);
                        continue;
                    }
                    if let Err(e) = tx.send(guest_mac, seq) {
                        errs.lock().unwrap().push(e);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    seq += 1;
                    sh.sent.fetch_add(1, Ordering::Relaxed);
                    next += period;
                    // Far behind (a slow VM): do not burst to catch up.
                    if Instant::now() > next + period * 20 {
                        next = Instant::now();
                    }
                }
            }));
        }
        let sh = shared.clone();
        threads.push(std::thread::spawn(move || {
            while !sh.stop.load(Ordering::Relaxed) {
                for (src, seq, intact) in rx.collect(Duration::from_millis(50)) {
                    if src == guest_mac {
                        sh.rx.lock().unwrap().record(seq, intact);
                    }
                }
            }
        }));
        Ok(PfTraffic {
            shared,
            threads,
            pf_mac,
            errors,
        })
    }

    /// The counts so far.
    pub fn stats(&self) -> TrafficStats {
        TrafficStats {
            sent: self.shared.sent.load(Ordering::Relaxed),
            from_guest: *self.shared.rx.lock().unwrap(),
        }
    }

    /// Send errors so far (the PF netdev down, ...).
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Stops both threads and returns the final counts.
    pub fn stop(mut self) -> TrafficStats {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for PfTraffic {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
