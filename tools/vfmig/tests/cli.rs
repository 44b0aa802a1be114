// SPDX-License-Identifier: GPL-2.0

//! `vfmig` against a fake sysfs tree (IVF_SYSFS_PCI): exit codes and output.

use std::fs;
use std::path::Path;
use std::process::Command;

fn fake_device(root: &Path, bdf: &str, vendor: &str, device: &str) {
    let dir = root.join(bdf);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("vendor"), format!("{vendor}\n")).unwrap();
    fs::write(dir.join("device"), format!("{device}\n")).unwrap();
    fs::write(dir.join("revision"), "0x01\n").unwrap();
}

fn vfmig(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vfmig"))
        .args(args)
        .env("IVF_SYSFS_PCI", root)
        .output()
        .expect("vfmig runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tree() -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    fake_device(dir.path(), "0000:01:10.0", "0x8086", "0x10ca");
    fake_device(dir.path(), "0000:01:10.2", "0x8086", "0x10ed");
    fake_device(dir.path(), "0000:00:02.0", "0x8086", "0x10c9");
    dir
}

#[test]
fn list_shows_supported_vfs_only() {
    let dir = tree();
    let (code, out, _) = vfmig(dir.path(), &["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("0000:01:10.0") && out.contains("82576 VF") && out.contains("igb"),
        "{out}"
    );
    assert!(
        out.contains("0000:01:10.2") && out.contains("82599 VF") && out.contains("ixgbe"),
        "{out}"
    );
    assert!(!out.contains("0000:00:02.0"), "the PF is not listed: {out}");
    assert!(out.contains("unbound"), "{out}");
}

#[test]
fn list_json_is_parseable() {
    let dir = tree();
    let (code, out, _) = vfmig(dir.path(), &["list", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["bdf"], "0000:01:10.0");
    assert_eq!(arr[0]["family"], "igb");
    assert_eq!(arr[1]["family"], "ixgbe");
}

#[test]
fn info_exit_codes() {
    let dir = tree();
    let (code, out, _) = vfmig(dir.path(), &["info", "0000:01:10.0"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("family:      igb"), "{out}");
    let (code, _, err) = vfmig(dir.path(), &["info", "0000:07:00.0"]);
    assert_eq!(code, 3, "missing device: {err}");
    assert!(err.contains("0000:07:00.0"), "{err}");
    let (code, _, err) = vfmig(dir.path(), &["info", "0000:00:02.0"]);
    assert_eq!(code, 4, "the PF is not a supported VF: {err}");
    assert!(err.contains("8086:10c9"), "{err}");
    let (code, _, err) = vfmig(dir.path(), &["info", "nonsense"]);
    assert_eq!(code, 2, "{err}");
}

/// A VF bound to the driver, with the attributes the driver gives it.
fn bound_tree(guest_cap: &str, dirty: &str) -> tempdir::Dir {
    let dir = tree();
    let vf = dir.path().join("0000:01:10.0");
    let drv = dir.path().join("drivers/intel_vf_vfio_pci");
    fs::create_dir_all(&drv).unwrap();
    std::os::unix::fs::symlink(&drv, vf.join("driver")).unwrap();
    fs::write(vf.join("migration_flags"), "0x7\n").unwrap();
    fs::write(vf.join("dirty_tracking"), format!("{dirty}\n")).unwrap();
    fs::write(vf.join("guest_capability"), format!("{guest_cap}\n")).unwrap();
    fs::write(vf.join("guest_generation"), "0x1234abcd\n").unwrap();
    fs::write(vf.join("guest_capability_offset"), "-1\n").unwrap();
    dir
}

#[test]
fn info_and_list_read_the_driver_from_sysfs_without_opening() {
    // No /dev/vfio here: a listing that opened the VF would fail.
    let dir = bound_tree("on", "device");
    let (code, out, err) = vfmig(dir.path(), &["info", "0000:01:10.0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("migration:   stop-copy, p2p, pre-copy"),
        "{out}"
    );
    assert!(
        out.contains("dirty:       device (the driver logs"),
        "{out}"
    );
    assert!(
        out.contains("guest cap:   on, generation 0x1234abcd"),
        "{out}"
    );
    let (code, out, _) = vfmig(dir.path(), &["info", "0000:01:10.0", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["dma_logging"], true);
    assert_eq!(v["dirty_tracking"], "device");
    assert_eq!(v["guest_capability"]["shown"], true);
    assert_eq!(v["guest_capability"]["generation"], "0x1234abcd");
    assert_eq!(v["guest_capability"]["offset"], serde_json::Value::Null);
    let (code, out, _) = vfmig(dir.path(), &["list"]);
    assert_eq!(code, 0);
    let line = out.lines().find(|l| l.starts_with("0000:01:10.0")).unwrap();
    assert!(
        line.contains("device")
            && line.contains(" on ")
            && line.ends_with("stop-copy,p2p,pre-copy"),
        "{line}"
    );

    let dir = bound_tree("off", "none");
    let (_, out, _) = vfmig(dir.path(), &["info", "0000:01:10.0", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["dma_logging"], false);
    assert_eq!(v["guest_capability"]["shown"], false);
}

#[test]
fn help_lists_the_exit_codes() {
    let dir = tree();
    for args in [&["--help"][..], &["save", "--help"], &["migrate", "--help"]] {
        let (code, out, err) = vfmig(dir.path(), args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.contains("Exit codes:\n  0  success\n  1  other error (the message says which)\n  2  usage error\n"),
            "{args:?}: {out}"
        );
        assert!(
            out.contains("\n  5  device busy (opened by another user, e.g. QEMU)\n"),
            "{args:?}: {out}"
        );
        assert!(
            out.contains("\n 10  migrate: the source could not be brought back to running"),
            "{args:?}: {out}"
        );
    }
    let (code, out, _) = vfmig(dir.path(), &["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("vfmig "), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tree();
    for args in [
        &[][..],
        &["frobnicate"],
        &["save", "0000:01:10.0"],
        &["migrate", "0000:01:10.0", "0000:01:10.0"],
    ] {
        let (code, _, err) = vfmig(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn empty_host_says_so() {
    let dir = tempdir::Dir::new();
    let (code, out, _) = vfmig(dir.path(), &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("no supported VFs found"), "{out}");
}

/// A temporary directory removed on drop (no extra crate needed).
mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "vfmig-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn igb_stream() -> Vec<u8> {
    igb_stream_rev(1)
}

/// An igb VF's stream as the driver writes it, of PCI revision `rev`.
fn igb_stream_rev(rev: u8) -> Vec<u8> {
    use ivf_common::hal::DeviceState;
    use ivf_common::ids::Family;
    use ivf_common::regs::IGB;
    use ivf_common::state::{header_for, write_compat_frame, write_state_frame, MAX_FRAME_LEN};
    let h = header_for(Family::Igb, &IGB, 0x8086, 0x10ca, rev);
    let mut st = DeviceState {
        queue_pairs: 2,
        ..Default::default()
    };
    st.rx[0].bal = 0x1234_5000;
    st.irq.eims = 0b11;
    let mut buf = vec![0u8; 2 * MAX_FRAME_LEN];
    let n = write_compat_frame(&mut buf, h, &IGB).unwrap();
    let m = write_state_frame(
        &mut buf[n..],
        h,
        &IGB,
        &st,
        &ivf_common::state::PfState {
            mbx: Some(Default::default()),
            admin: Some(Default::default()),
        },
    )
    .unwrap();
    buf.truncate(n + m);
    buf
}

#[test]
fn inspect_shows_every_section() {
    let dir = tree();
    let file = dir.path().join("s.state");
    fs::write(&file, igb_stream()).unwrap();
    let (code, out, err) = vfmig(dir.path(), &["inspect", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["kind"], "compatibility");
    assert_eq!(v[1]["kind"], "state");
    assert_eq!(v[1]["family"], "igb");
    let names: Vec<&str> = v[1]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["DEVICE", "QUEUES", "IRQ", "PF_MBX", "PF_ADMIN"]);
    assert_eq!(v[1]["pf"]["vlans"], serde_json::json!([]));
    assert_eq!(v[1]["state"]["queues"][0]["rx"][0], "0x12345000");
    assert_eq!(v[1]["state"]["eims"], "0x00000003");
    let (code, out, _) = vfmig(dir.path(), &["inspect", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("section 0x0010 QUEUES"), "{out}");
}

#[test]
fn inspect_refuses_corrupt_files() {
    let dir = tree();
    let file = dir.path().join("bad.state");
    let mut s = igb_stream();
    let last = s.len() - 1;
    s[last] ^= 4;
    fs::write(&file, &s).unwrap();
    let (code, _, err) = vfmig(dir.path(), &["inspect", file.to_str().unwrap()]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("crc32c"), "{err}");
    fs::write(&file, &s[..30]).unwrap();
    let (code, _, err) = vfmig(dir.path(), &["inspect", file.to_str().unwrap()]);
    assert_eq!(code, 6);
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn check_gives_a_verdict_with_reasons() {
    let dir = tree();
    let file = dir.path().join("s.state");
    fs::write(&file, igb_stream()).unwrap();
    // The igb VF is unbound in the fake tree: that is the only reason.
    let (code, out, _) = vfmig(
        dir.path(),
        &["check", file.to_str().unwrap(), "0000:01:10.0", "--json"],
    );
    assert_eq!(code, 6);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reasons"].as_array().unwrap().len(), 1, "{out}");
    assert!(v["reasons"][0]
        .as_str()
        .unwrap()
        .contains("not intel_vf_vfio_pci"));
    // Bound to our driver, the verdict is "compatible".
    let drv = dir.path().join("drivers/intel_vf_vfio_pci");
    fs::create_dir_all(&drv).unwrap();
    std::os::unix::fs::symlink(&drv, dir.path().join("0000:01:10.0/driver")).unwrap();
    let (code, out, err) = vfmig(
        dir.path(),
        &["check", file.to_str().unwrap(), "0000:01:10.0"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("compatible with 0000:01:10.0"), "{out}");
    // The 82599 VF is of another family.
    let (code, out, _) = vfmig(
        dir.path(),
        &["check", file.to_str().unwrap(), "0000:01:10.2"],
    );
    assert_eq!(code, 6);
    assert!(out.contains("family"), "{out}");
}

#[test]
fn check_and_inspect_refuse_what_the_driver_refuses() {
    use ivf_common::state::COMPAT_FRAME_LEN;
    let dir = tree();
    let drv = dir.path().join("drivers/intel_vf_vfio_pci");
    fs::create_dir_all(&drv).unwrap();
    std::os::unix::fs::symlink(&drv, dir.path().join("0000:01:10.0/driver")).unwrap();
    let file = dir.path().join("s.state");
    let good = igb_stream();
    let (compat, state) = good.split_at(COMPAT_FRAME_LEN);
    let check = |bytes: &[u8]| {
        fs::write(&file, bytes).unwrap();
        let (code, out, _) = vfmig(
            dir.path(),
            &["check", file.to_str().unwrap(), "0000:01:10.0", "--json"],
        );
        assert_eq!(code, 6, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["compatible"], false);
        v["reasons"][0].as_str().unwrap().to_string()
    };
    // Another revision of the same VF.
    let r = check(&igb_stream_rev(2));
    assert!(r.contains("revision 0x2 in stream, 0x1 here"), "{r}");
    // The state frame alone, a third frame, and the pre-copy data only.
    let r = check(state);
    assert!(
        r.contains("frame 1 is a state frame, expected a compatibility frame"),
        "{r}"
    );
    let r = check(&[&good[..], compat].concat());
    assert!(r.contains("frame 3 is a compatibility frame"), "{r}");
    let r = check(compat);
    assert!(
        r.contains("without its state frame") && r.contains("errno 61"),
        "{r}"
    );
    // inspect refuses the frames out of order too (the pre-copy data alone
    // is a valid thing to look at).
    for bytes in [state, &[&good[..], compat].concat()[..]] {
        fs::write(&file, bytes).unwrap();
        let (code, _, err) = vfmig(dir.path(), &["inspect", file.to_str().unwrap()]);
        assert_eq!(code, 6, "{err}");
        assert!(err.contains("errno 84"), "{err}");
    }
    fs::write(&file, compat).unwrap();
    let (code, _, err) = vfmig(dir.path(), &["inspect", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}
