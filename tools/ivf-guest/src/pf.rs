// SPDX-License-Identifier: GPL-2.0

//! The PF's side of the data path: raw test frames on the PF netdev, the
//! peer of a [`Guest`](crate::Guest) in the test VM (tools/vm/run names the
//! netdev in `IVF_PF_IF`).

use std::io;
use std::time::{Duration, Instant};

use crate::{check_frame, make_frame, ETHERTYPE_FROM_GUEST, ETHERTYPE_TO_GUEST, FRAME_LEN};

/// A raw AF_PACKET socket bound to the PF's netdev.
pub struct PfPort {
    fd: i32,
    /// The PF's MAC address.
    pub mac: [u8; 6],
}

const ETH_P_ALL: u16 = 0x0003;

impl PfPort {
    /// Opens the PF netdev the runner named (IVF_PF_IF).
    pub fn open() -> Result<PfPort, String> {
        let ifname =
            std::env::var("IVF_PF_IF").map_err(|_| "IVF_PF_IF not set (run under tools/vm/run)")?;
        PfPort::open_iface(&ifname)
    }

    /// Opens the netdev `ifname` (a PF's).
    pub fn open_iface(ifname: &str) -> Result<PfPort, String> {
        let ifname = ifname.to_string();
        let mac_text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))
            .map_err(|e| format!("{ifname}: {e}"))?;
        let mut mac = [0u8; 6];
        for (i, h) in mac_text.trim().split(':').enumerate().take(6) {
            mac[i] = u8::from_str_radix(h, 16).map_err(|e| e.to_string())?;
        }
        let cname = std::ffi::CString::new(ifname.clone()).unwrap();
        // SAFETY: plain libc calls with valid arguments; errors checked.
        unsafe {
            let ifindex = libc::if_nametoindex(cname.as_ptr());
            if ifindex == 0 {
                return Err(format!("{ifname}: {}", io::Error::last_os_error()));
            }
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from(ETH_P_ALL.to_be()),
            );
            if fd < 0 {
                return Err(format!("AF_PACKET socket: {}", io::Error::last_os_error()));
            }
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ETH_P_ALL.to_be();
            sll.sll_ifindex = ifindex as i32;
            if libc::bind(
                fd,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            ) < 0
            {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(format!("bind to {ifname}: {e}"));
            }
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 20_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as u32,
            );
            Ok(PfPort { fd, mac })
        }
    }

    /// Sends test frame `seq` to `dst`.
    pub fn send(&self, dst: [u8; 6], seq: u64) -> Result<(), String> {
        let f = make_frame(dst, self.mac, ETHERTYPE_TO_GUEST, seq);
        // SAFETY: sending our own buffer on our own socket.
        let n = unsafe { libc::send(self.fd, f.as_ptr().cast(), f.len(), 0) };
        if n != FRAME_LEN as isize {
            return Err(format!("send: {}", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Sends raw bytes (a frame built by the caller).
    pub fn send_raw(&self, f: &[u8]) -> Result<(), String> {
        // SAFETY: sending our own buffer on our own socket.
        let n = unsafe { libc::send(self.fd, f.as_ptr().cast(), f.len(), 0) };
        if n != f.len() as isize {
            return Err(format!("send: {}", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Collects frames the guest sent (ethertype FROM_GUEST) for `window`:
    /// (source MAC, sequence number, intact).
    pub fn collect(&self, window: Duration) -> Vec<([u8; 6], u64, bool)> {
        let mut out = Vec::new();
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        while start.elapsed() < window {
            // SAFETY: receiving into our own buffer.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                continue;
            }
            let f = &buf[..n as usize];
            if let Some((seq, intact)) = check_frame(f, ETHERTYPE_FROM_GUEST) {
                out.push((f[6..12].try_into().unwrap(), seq, intact));
            }
        }
        out
    }
}

impl Drop for PfPort {
    fn drop(&mut self) {
        // SAFETY: closing our own fd.
        unsafe { libc::close(self.fd) };
    }
}
