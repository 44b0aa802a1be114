// SPDX-License-Identifier: GPL-2.0

//! The files vfmig reads and writes, as root on paths that others name
//! (issue 25).
//!
//! Reading ([`read_stream`]: `load`, `inspect`, `check`): the path is
//! followed as any tool follows it, symbolic links included (what it names
//! is the caller's choice: a service that runs vfmig as root on a user's
//! path must check that the user may read what it names). What it names
//! must be a regular file: a FIFO would block the read for ever and a
//! device may act on being opened, so the file's type is learnt without
//! opening it for reading (`O_PATH`), and the file that is then read is
//! that same file, whatever replaced the path meanwhile. It is read only
//! if it is no larger than the largest stream ([`MAX_FILE_LEN`]), and no
//! more than that is read if it grows meanwhile.
//!
//! Writing ([`Output`]: `save`): the destination must be a regular file or
//! nothing (a symbolic link is neither followed nor replaced; a device
//! node, a FIFO or a directory is not replaced). The state goes first to a
//! temporary file created beside it exclusively (`O_CREAT | O_EXCL |
//! O_NOFOLLOW`, mode 0600) under a name of its own (random, never reused),
//! then is written, synced and renamed over the destination: a symbolic
//! link planted at any name is never followed, and the file, which holds
//! a guest's device state, is readable by its owner only. That temporary
//! file is created before the VF is opened: a destination that cannot be
//! written costs the VF nothing.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ivf_common::state::{FrameSequence, COMPAT_FRAME_LEN, MAX_FRAME_LEN};
use ivf_common::stream::MAX_STREAM_LEN;

use crate::{Exit, Failure};

/// The largest file that can hold a stream: [`FrameSequence::FRAMES`]
/// frames (a compatibility frame, then a state frame), each at most
/// [`MAX_STREAM_LEN`] bytes (its header gives its length, and a longer
/// one is refused). A longer file is no stream of any version.
pub(crate) const MAX_FILE_LEN: usize = FrameSequence::FRAMES as usize * MAX_STREAM_LEN;

// Every stream a driver writes fits: a compatibility frame and the
// largest state frame.
const _: () = assert!(COMPAT_FRAME_LEN + MAX_FRAME_LEN <= MAX_FILE_LEN);

/// The mode of the file `save` writes.
pub(crate) const OUTPUT_MODE: u32 = 0o600;

/// What a file of type `t` is, in words ("a FIFO").
fn kind(t: fs::FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "of an unknown type"
    }
}

/// [`Exit::Other`]: `path` is `t`, not a regular file.
fn not_regular(path: &Path, t: fs::FileType, what: &str) -> Failure {
    Failure::new(
        Exit::Other,
        format!(
            "{} is {}, not a regular file: {what}",
            path.display(),
            kind(t)
        ),
    )
}

/// [`Exit::Refused`] unless `len` bytes can be a stream.
fn bounded(path: &Path, len: u64, grew: bool) -> Result<(), Failure> {
    if len <= MAX_FILE_LEN as u64 {
        return Ok(());
    }
    let size = if grew {
        format!("grew while vfmig read it, to at least {len} bytes")
    } else {
        format!("is {len} bytes")
    };
    Err(Failure::new(
        Exit::Refused,
        format!(
            "{} {size}, more than the largest stream ({MAX_FILE_LEN} bytes: {} frames of at most {MAX_STREAM_LEN})",
            path.display(),
            FrameSequence::FRAMES
        ),
    ))
}

/// The saved state at `path`, read as the module says: a regular file
/// (else [`Exit::Other`] naming what it is) of at most [`MAX_FILE_LEN`]
/// bytes (else [`Exit::Refused`] naming both sizes).
pub(crate) fn read_stream(path: &Path) -> Result<Vec<u8>, Failure> {
    let failed =
        |e: io::Error| Failure::new(Exit::Other, format!("reading {}: {e}", path.display()));
    // O_PATH finds the file without opening it for reading: no FIFO
    // blocks, no device's open runs.
    let at = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .map_err(failed)?;
    let meta = at.metadata().map_err(failed)?;
    let regular = |t: fs::FileType| -> Result<(), Failure> {
        if t.is_file() {
            Ok(())
        } else {
            Err(not_regular(
                path,
                t,
                "a saved state is read only from a regular file",
            ))
        }
    };
    regular(meta.file_type())?;
    bounded(path, meta.len(), false)?;
    let file = reopen(&at, path).map_err(failed)?;
    let now = file.metadata().map_err(failed)?;
    if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
        return Err(Failure::new(
            Exit::Other,
            format!(
                "reading {}: it was replaced while vfmig opened it",
                path.display()
            ),
        ));
    }
    regular(now.file_type())?;
    read_bounded(file, path, meta.len())
}

/// The file `at` (an `O_PATH` descriptor of `path`) opened for reading:
/// through `/proc/self/fd`, the very file `at` found; without `/proc`,
/// `path` again (the caller checks it is the same file). Non-blocking and
/// without becoming a controlling terminal, whatever it turns out to be.
fn reopen(at: &File, path: &Path) -> io::Result<File> {
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
    };
    let fd = PathBuf::from(format!("/proc/self/fd/{}", at.as_raw_fd()));
    match open(&fd) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => open(path),
        r => r,
    }
}

/// At most [`MAX_FILE_LEN`] bytes of `r`, the file at `path` of `len`
/// bytes when it was looked at; one that has more by now is refused
/// ([`Exit::Refused`]) after reading one byte past the bound, no more.
fn read_bounded(r: impl Read, path: &Path, len: u64) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::with_capacity(len.min(MAX_FILE_LEN as u64) as usize);
    r.take(MAX_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(Exit::Other, format!("reading {}: {e}", path.display())))?;
    bounded(path, bytes.len() as u64, true)?;
    Ok(bytes)
}

/// Where `save` writes, as the module says: [`Output::create`] checks the
/// destination and creates the temporary file, [`Output::commit`] fills
/// it and renames it over the destination; dropped uncommitted, the
/// temporary file is removed.
pub(crate) struct Output {
    /// The destination, as the user named it.
    path: PathBuf,
    /// Its directory.
    dir: PathBuf,
    /// The temporary file, in `dir`.
    tmp: PathBuf,
    /// Open on `tmp` until committed.
    file: Option<File>,
}

/// A name unique to this attempt: random (hashed with the process's
/// random keys), with the pid and the time.
fn unique(attempt: u32) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(attempt);
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Temporary names tried before giving up (each is random: more than one
/// is needed only if somebody creates files of random names there).
const ATTEMPTS: u32 = 16;

impl Output {
    /// Checks the destination `path` and creates the temporary file
    /// beside it; [`Exit::Other`] naming the path if either fails.
    pub(crate) fn create(path: &Path) -> Result<Output, Failure> {
        let fail = |what: String| Failure::new(Exit::Other, what);
        let name = path
            .file_name()
            .ok_or_else(|| fail(format!("{} names no file to write", path.display())))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(path)
                    .map(|t| format!(" (to {})", t.display()))
                    .unwrap_or_default();
                return Err(fail(format!(
                    "{} is a symbolic link{to}: vfmig neither follows nor replaces one; name the file itself",
                    path.display()
                )));
            }
            Ok(m) if !m.is_file() => {
                return Err(not_regular(
                    path,
                    m.file_type(),
                    "vfmig replaces only a regular file",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(format!("writing {}: {e}", path.display()))),
        }
        for attempt in 0..ATTEMPTS {
            let mut tmp_name = OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{:016x}.vfmig-tmp", unique(attempt)));
            let tmp = dir.join(tmp_name);
            // create_new is O_CREAT | O_EXCL: nothing that exists at the
            // name, a symbolic link included, is opened.
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(OUTPUT_MODE)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp);
            match created {
                Ok(file) => {
                    let out = Output {
                        path: path.to_path_buf(),
                        dir,
                        tmp,
                        file: Some(file),
                    };
                    // Exactly 0600 whatever the umask (dropped, `out` removes it).
                    out.file
                        .as_ref()
                        .expect("just opened")
                        .set_permissions(Permissions::from_mode(OUTPUT_MODE))
                        .map_err(|e| out.failed(e))?;
                    return Ok(out);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(fail(format!(
                        "writing {}: creating {}: {e}",
                        path.display(),
                        tmp.display()
                    )))
                }
            }
        }
        Err(fail(format!(
            "writing {}: {ATTEMPTS} temporary names in {} were taken",
            path.display(),
            dir.display()
        )))
    }

    fn failed(&self, e: io::Error) -> Failure {
        Failure::new(Exit::Other, format!("writing {}: {e}", self.path.display()))
    }

    /// Writes `bytes` to the temporary file, syncs it, renames it over
    /// the destination (which replaces whatever is there by then, a
    /// symbolic link included, without following it) and syncs the
    /// directory.
    pub(crate) fn commit(mut self, bytes: &[u8]) -> Result<(), Failure> {
        let mut file = self.file.take().expect("committed once");
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.failed(e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| self.failed(e))?;
        // Renamed: nothing is left to remove.
        self.tmp = PathBuf::new();
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                Failure::new(
                    Exit::Other,
                    format!(
                        "{} written, but syncing {} failed: {e}",
                        self.path.display(),
                        self.dir.display()
                    ),
                )
            })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A directory of its own, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("vfmig-unit-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The state is written 0600 whatever the umask and whatever the file
    /// it replaces was, through a temporary file of its own, never through
    /// a symbolic link planted at a name vfmig used or might use.
    #[test]
    fn output_is_0600_and_never_written_through_a_symlink() {
        let dir = Dir::new("output");
        let d = &dir.0;
        let victim = d.join("victim");
        fs::write(&victim, "precious").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let out = d.join("vf0.state");
        // The predictable names: the old temporary name, and others a
        // guesser would try.
        for planted in [
            "vf0.vfmig-tmp",
            "vf0.state.vfmig-tmp",
            ".vf0.state.vfmig-tmp",
        ] {
            symlink(&victim, d.join(planted)).unwrap();
        }
        // An existing, world-readable destination is replaced by a 0600 one.
        fs::write(&out, "old").unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
        let before = names(d);
        Output::create(&out)
            .and_then(|o| o.commit(b"state"))
            .map_err(|f| f.message)
            .unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"state");
        assert!(fs::symlink_metadata(&out).unwrap().is_file());
        assert_eq!(mode(&out), 0o600, "the state is readable by its owner only");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(mode(&victim), 0o644);
        assert_eq!(names(d), before, "a temporary file left behind");
    }

    /// Until it is committed the temporary file exists, 0600, beside the
    /// destination, under a name of its own each time; dropped, it is gone
    /// and the destination untouched.
    #[test]
    fn the_temporary_file_is_unique_and_removed_on_failure() {
        let dir = Dir::new("tmp");
        let d = &dir.0;
        let out = d.join("vf0.state");
        let a = Output::create(&out).map_err(|f| f.message).unwrap();
        let b = Output::create(&out).map_err(|f| f.message).unwrap();
        let tmps = names(d);
        assert_eq!(tmps.len(), 2, "{tmps:?}");
        assert_ne!(tmps[0], tmps[1]);
        for t in &tmps {
            assert!(
                t.starts_with(".vf0.state.") && t.ends_with(".vfmig-tmp"),
                "{t}"
            );
            assert_eq!(mode(&d.join(t)), 0o600, "{t}");
        }
        drop(a);
        drop(b);
        assert_eq!(names(d), Vec::<String>::new());
    }

    /// A file that grows while it is read (here, without end) is read no
    /// further than a byte past the bound, and refused naming both sizes;
    /// a file of the bound is read whole.
    #[test]
    fn a_growing_file_is_read_no_further_than_the_bound() {
        let p = Path::new("/x/grows.state");
        let f = read_bounded(io::repeat(7), p, 10).expect_err("refused");
        assert_eq!(f.code, Exit::Refused);
        assert_eq!(
            f.message,
            format!(
                "/x/grows.state grew while vfmig read it, to at least {} bytes, \
                 more than the largest stream ({MAX_FILE_LEN} bytes: 2 frames of at most 65536)",
                MAX_FILE_LEN + 1
            )
        );
        let whole = read_bounded(io::repeat(7).take(MAX_FILE_LEN as u64), p, 0)
            .map_err(|f| f.message)
            .unwrap();
        assert_eq!(whole.len(), MAX_FILE_LEN);
    }

    /// A destination that is a symbolic link or not a regular file is
    /// refused at once, naming it.
    #[test]
    fn odd_destinations_are_refused() {
        let dir = Dir::new("odd");
        let d = &dir.0;
        let link = d.join("link");
        symlink(d.join("nowhere"), &link).unwrap();
        let f = Output::create(&link).err().expect("a symlink is refused");
        assert_eq!(f.code, Exit::Other);
        assert!(
            f.message.starts_with(&format!(
                "{} is a symbolic link (to {}",
                link.display(),
                d.join("nowhere").display()
            )),
            "{}",
            f.message
        );
        assert!(!d.join("nowhere").exists());
        let f = Output::create(d).err().expect("a directory is refused");
        assert!(
            f.message.starts_with(&format!(
                "{} is a directory, not a regular file",
                d.display()
            )),
            "{}",
            f.message
        );
        assert_eq!(names(d), ["link"]);
    }
}
