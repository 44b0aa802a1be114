// SPDX-License-Identifier: GPL-2.0

//! `vfmig` against a fake sysfs tree (IVF_SYSFS_PCI): exit codes and output.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fake_device(root: &Path, bdf: &str, vendor: &str, device: &str) {
    let dir = root.join(bdf);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("vendor"), format!("{vendor}\n")).unwrap();
    fs::write(dir.join("device"), format!("{device}\n")).unwrap();
    fs::write(dir.join("revision"), "0x01\n").unwrap();
}

fn vfmig(root: &Path, args: &[&str]) -> (i32, String, String) {
    vfmig_os(root, &args.iter().map(OsStr::new).collect::<Vec<_>>())
}

/// [`vfmig`] with arguments that need not be UTF-8. A vfmig that has not
/// exited after [`DEADLINE`] (blocked on a FIFO, say) is killed and the
/// test fails: no test can hang.
fn vfmig_os(root: &Path, args: &[&OsStr]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vfmig"))
        .args(args)
        .env("IVF_SYSFS_PCI", root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vfmig runs");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).expect("reading vfmig's output");
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for vfmig") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vfmig {args:?} still running after {DEADLINE:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().expect("exit code"),
        String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    )
}

/// How long any vfmig of these tests may run.
const DEADLINE: Duration = Duration::from_secs(20);

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

// Issue 25: vfmig runs as root on paths (and devices) that others name.

/// What opening a VF of the fake tree says (it has no vfio cdev): a
/// command whose error says this opened, or tried to open, the VF.
const OPENED: &str = "not bound to a vfio driver";

fn bind(root: &Path, bdf: &str) {
    let drv = root.join("drivers/intel_vf_vfio_pci");
    fs::create_dir_all(&drv).unwrap();
    std::os::unix::fs::symlink(&drv, root.join(bdf).join("driver")).unwrap();
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(ok.success(), "mkfifo {}", path.display());
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `save` checks its destination, and creates its temporary file, before
/// it opens (so stops and resets) the VF: a destination that is a symbolic
/// link, or not a regular file, is refused naming it, and nothing is
/// written through a symbolic link planted at the temporary name vfmig
/// used to use. (That the file written is 0600 and how its temporary file
/// is made, the unit tests of `files.rs` show: a save that succeeds needs
/// a real VF.)
#[test]
fn save_checks_its_destination_and_never_follows_a_planted_symlink() {
    let dir = tree();
    let d = dir.path();
    bind(d, "0000:01:10.0");
    let victim = d.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let untouched = || {
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(mode(&victim), 0o644);
    };
    let save = |out: &Path| vfmig(d, &["save", "0000:01:10.0", "-o", out.to_str().unwrap()]);

    // The destination is a symbolic link: refused, not followed, kept.
    let link = d.join("link.state");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let (code, _, err) = save(&link);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{} is a symbolic link", link.display())),
        "{err}"
    );
    assert!(!err.contains(OPENED), "the VF was opened: {err}");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    untouched();

    // Not a regular file: refused, left as it was.
    let fifo = d.join("fifo.state");
    mkfifo(&fifo);
    let sub = d.join("dir.state");
    fs::create_dir(&sub).unwrap();
    for (out, kind) in [(&fifo, "a FIFO"), (&sub, "a directory")] {
        let (code, _, err) = save(out);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("{} is {kind}, not a regular file", out.display())),
            "{err}"
        );
        assert!(!err.contains(OPENED), "the VF was opened: {err}");
    }
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::symlink_metadata(&sub).unwrap().is_dir());

    // Symbolic links planted at the temporary names vfmig used to use
    // (FILE with the extension "vfmig-tmp"), dangling or not: the save
    // gets as far as opening the VF (which fails here), and neither the
    // target nor the destination has been written; no temporary file is
    // left behind.
    let out = d.join("vf0.state");
    std::os::unix::fs::symlink(&victim, d.join("vf0.vfmig-tmp")).unwrap();
    std::os::unix::fs::symlink(d.join("made-by-vfmig"), d.join("vf0.state.vfmig-tmp")).unwrap();
    let before = listing(d);
    let (code, _, err) = save(&out);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(OPENED), "{err}");
    untouched();
    assert!(!d.join("made-by-vfmig").exists());
    assert!(
        fs::symlink_metadata(&out).is_err(),
        "{} written",
        out.display()
    );
    assert_eq!(listing(d), before, "a temporary file left behind");
}

/// `load`, `inspect` and `check` read only a regular file no larger than
/// the largest stream: a FIFO (which would block the read for ever), a
/// directory or a device is refused naming the path and what it is, an
/// oversized file naming both sizes, before anything else is done.
#[test]
fn reading_refuses_what_cannot_be_a_stream() {
    use ivf_common::state::FrameSequence;
    use ivf_common::stream::MAX_STREAM_LEN;
    let dir = tree();
    let d = dir.path();
    bind(d, "0000:01:10.0");
    let commands = |p: &str| -> Vec<Vec<String>> {
        [
            &["inspect", p][..],
            &["check", p, "0000:01:10.0"],
            &["load", "0000:01:10.0", "-i", p],
        ]
        .iter()
        .map(|a| a.iter().map(|s| s.to_string()).collect())
        .collect()
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vfmig(d, &args)
    };

    let fifo = d.join("vf0.fifo");
    mkfifo(&fifo);
    let null = Path::new("/dev/null");
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (d, "a directory"),
        (null, "a character device"),
    ] {
        for args in commands(path.to_str().unwrap()) {
            // Without the check, reading the FIFO blocks: vfmig_os kills it.
            let start = Instant::now();
            let (code, _, err) = run(&args);
            assert_eq!(code, 1, "{args:?}: {err}");
            assert!(
                err.contains(&format!("{} is {kind}, not a regular file", path.display())),
                "{args:?}: {err}"
            );
            assert!(!err.contains(OPENED), "{args:?}: the VF was opened: {err}");
            assert!(start.elapsed() < Duration::from_secs(5), "{args:?}: slow");
        }
    }

    // One byte more than FrameSequence::FRAMES frames of the largest size.
    let max = FrameSequence::FRAMES as usize * MAX_STREAM_LEN;
    let big = d.join("big.state");
    let mut bytes = igb_stream();
    bytes.resize(max + 1, 0);
    fs::write(&big, &bytes).unwrap();
    for args in commands(big.to_str().unwrap()) {
        let (code, _, err) = run(&args);
        assert_eq!(code, 6, "{args:?}: {err}");
        assert!(
            err.contains(&format!("{} is {} bytes", big.display(), max + 1))
                && err.contains(&format!("the largest stream ({max} bytes")),
            "{args:?}: {err}"
        );
        assert!(!err.contains(OPENED), "{args:?}: the VF was opened: {err}");
    }
    // The largest size itself is read (and then refused as a stream: the
    // zeros after the frames are no frame).
    bytes.truncate(max);
    fs::write(&big, &bytes).unwrap();
    let (code, _, err) = vfmig(d, &["inspect", big.to_str().unwrap()]);
    assert_eq!(code, 6, "{err}");
    assert!(!err.contains("largest stream"), "{err}");
    assert!(
        err.contains(&format!("at byte {}", igb_stream().len())),
        "{err}"
    );

    // A symbolic link to a stream is followed (documented).
    let good = d.join("good.state");
    fs::write(&good, igb_stream()).unwrap();
    let link = d.join("link.state");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let (code, _, err) = vfmig(d, &["inspect", link.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// `load` makes every check that needs no device (the file, the VF's
/// identity and binding in sysfs, the file against the VF as `check`
/// judges it) before it opens the VF, which resets it: a file `check`
/// refuses never gets the VF opened. The fake VF cannot be opened, so
/// any open shows in the error.
#[test]
fn load_refuses_a_bad_file_without_opening_the_vf() {
    use ivf_common::state::COMPAT_FRAME_LEN;
    let dir = tree();
    let d = dir.path();
    bind(d, "0000:01:10.0");
    bind(d, "0000:01:10.2");
    let file = d.join("s.state");
    let load = |bdf: &str, bytes: &[u8]| {
        fs::write(&file, bytes).unwrap();
        vfmig(d, &["load", bdf, "-i", file.to_str().unwrap()])
    };
    let good = igb_stream();
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 4;
    let cases: [(&str, &[u8], &str); 5] = [
        ("0000:01:10.0", &corrupt, "crc32c"),
        ("0000:01:10.0", &good[..30], "truncated"),
        (
            "0000:01:10.0",
            &good[..COMPAT_FRAME_LEN],
            "without its state frame",
        ),
        (
            "0000:01:10.0",
            &igb_stream_rev(2),
            "revision 0x2 in stream, 0x1 here",
        ),
        ("0000:01:10.2", &good, "family"),
    ];
    for (bdf, bytes, why) in cases {
        let (code, out, err) = load(bdf, bytes);
        assert_eq!(code, 6, "{why}: {out}{err}");
        assert!(err.contains(why), "{why}: {err}");
        assert!(
            err.contains(&format!("{} cannot be loaded into {bdf}", file.display())),
            "{why}: {err}"
        );
        assert!(!err.contains(OPENED), "{why}: the VF was opened: {err}");
    }
    // A file the checks accept: only then is the VF opened (which fails
    // here, as the fake VF has no vfio cdev).
    let (code, _, err) = load("0000:01:10.0", &good);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(OPENED), "{err}");
}

/// Every string vfmig prints that it did not write itself (sysfs names
/// and contents, /proc command names, paths, other crates' messages) is
/// printed with its control bytes, DEL, C1 controls, invisible format
/// characters and backslashes escaped as \xNN: nothing reaches the
/// terminal raw. JSON keeps the exact string (escaped as JSON).
#[test]
fn strings_from_the_system_are_printed_escaped() {
    // OSC (set the window title), BEL, clear screen, DEL, the 8-bit CSI
    // (U+009B), a right-to-left override, a backslash.
    const EVIL: &str = "\x1b]0;owned\x07\x1b[2J\x7f\u{9b}31m\u{202e}\\";
    const SHOWN: &str = "\\x1b]0;owned\\x07\\x1b[2J\\x7f\\xc2\\x9b31m\\xe2\\x80\\xae\\x5c";
    fn raw(text: &str) -> bool {
        text.chars()
            .any(|c| (c.is_control() && c != '\n') || ('\u{2000}'..='\u{206f}').contains(&c))
    }
    let dir = tree();
    let d = dir.path();
    let vf = d.join("0000:01:10.0");
    let drv = d.join(format!("drivers/intel_vf_vfio_pci{EVIL}"));
    fs::create_dir_all(&drv).unwrap();
    std::os::unix::fs::symlink(&drv, vf.join("driver")).unwrap();
    fs::create_dir_all(vf.join(format!("vfio-dev/vfio{EVIL}"))).unwrap();
    for args in [&["list"][..], &["info", "0000:01:10.0"]] {
        let (code, out, err) = vfmig(d, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!raw(&out), "{args:?}: {out:?}");
        assert!(
            out.contains(&format!("intel_vf_vfio_pci{SHOWN}")),
            "{args:?}: {out:?}"
        );
    }
    let (_, out, _) = vfmig(d, &["info", "0000:01:10.0"]);
    assert!(
        out.contains(&format!("/dev/vfio/devices/vfio{SHOWN}")),
        "{out:?}"
    );
    // JSON: the same string, every character that is not printable escaped.
    let (code, out, _) = vfmig(d, &["list", "--json"]);
    assert_eq!(code, 0);
    assert!(!raw(&out), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v[0]["driver"], format!("intel_vf_vfio_pci{EVIL}"));

    // A sysfs file's contents in an error message.
    fs::write(vf.join("vendor"), format!("0x80{EVIL}86\n")).unwrap();
    let (code, _, err) = vfmig(d, &["info", "0000:01:10.0"]);
    assert_eq!(code, 1, "{err}");
    assert!(!raw(&err), "{err:?}");
    assert!(err.contains(&format!("'0x80{SHOWN}86'")), "{err:?}");

    // A path, in output and in errors; bytes that are not UTF-8 as well.
    let file = d.join(format!("s{EVIL}.state"));
    fs::write(&file, igb_stream()).unwrap();
    let (code, out, err) = vfmig(d, &["inspect", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!raw(&out), "{out:?}");
    assert!(
        out.starts_with(&format!("{}/s{SHOWN}.state: ", d.display())),
        "{out:?}"
    );
    let mut name = d.as_os_str().as_bytes().to_vec();
    name.extend_from_slice(b"/\x9b2J\xff.state");
    let (code, _, err) = vfmig_os(d, &[OsStr::new("inspect"), OsStr::from_bytes(&name)]);
    assert_eq!(code, 1, "{err}");
    assert!(!raw(&err), "{err:?}");
}
