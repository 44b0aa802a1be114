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
