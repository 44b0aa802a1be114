// SPDX-License-Identifier: GPL-2.0

//! vfmig's exit codes: one table gives each its value, its name and its
//! line of `--help` (Documentation/vfmig.rst has the same codes, which a
//! test checks). The codes are stable: never renumber one.

use std::process::ExitCode;

/// Defines [`Exit`] from rows of `Name = value, "help text";`.
macro_rules! exit_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $help:literal;)+) => {
        /// An exit code of vfmig.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Exit {
            $($(#[$doc])* $name = $value,)+
        }

        impl Exit {
            /// Every exit code, in the table's order.
            pub(crate) const ALL: &'static [Exit] = &[$(Exit::$name),+];

            /// The line of `--help` that explains this code.
            pub(crate) const fn help(self) -> &'static str {
                match self {
                    $(Exit::$name => $help,)+
                }
            }
        }
    };
}

exit_codes! {
    /// Success.
    Success = 0, "success";
    /// Any other error.
    Other = 1, "other error (the message says which)";
    /// A usage error (clap's, or arguments that contradict each other).
    Usage = 2, "usage error";
    /// No such PCI device.
    NoDevice = 3, "no such PCI device";
    /// Not a supported VF, or not bound to intel_vf_vfio_pci.
    Unsupported = 4, "not a supported VF, or not bound to intel_vf_vfio_pci";
    /// The device is held by another user.
    Busy = 5, "device busy (opened by another user, e.g. QEMU)";
    /// The stream is invalid, or the device refused it.
    Refused = 6, "stream invalid, or refused by the device (the message names the field)";
    /// `migrate`: the source failed mid-migration.
    Source = 7, "migrate: the source failed mid-migration (e.g. it was reset); guest back on SRC";
    /// `migrate`: the destination failed after accepting the stream.
    Destination = 8, "migrate: the destination failed after accepting the stream; guest back on SRC";
    /// `migrate`: verification failed.
    Verify = 9, "migrate: verification failed (memory copy, or payloads corrupt or twice)";
    /// `migrate`: the source could not be brought back to running.
    Rollback = 10, "migrate: the source could not be brought back to running";
}

impl Exit {
    /// The numeric exit code.
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }

    /// The "Exit codes:" section of `--help`.
    pub(crate) fn help_text() -> String {
        let mut text = String::from("Exit codes:");
        for e in Exit::ALL {
            text.push_str(&format!("\n{:>3}  {}", e.code(), e.help()));
        }
        text
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

impl From<ivf_migrate::ErrorKind> for Exit {
    /// The exit code of a failed migration (the match keeps the two enums
    /// in step: a new kind does not compile until it has a code here).
    fn from(kind: ivf_migrate::ErrorKind) -> Exit {
        use ivf_migrate::ErrorKind as K;
        match kind {
            K::Usage => Exit::Usage,
            K::NoDevice => Exit::NoDevice,
            K::Unsupported => Exit::Unsupported,
            K::Busy => Exit::Busy,
            K::Refused => Exit::Refused,
            K::Source => Exit::Source,
            K::Destination => Exit::Destination,
            K::Verify => Exit::Verify,
            K::Rollback => Exit::Rollback,
            K::Other => Exit::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_distinct_and_keep_their_values() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, (0..=10).collect::<Vec<u8>>(), "stable values");
        assert_eq!(Exit::Busy.code(), 5);
        assert_eq!(Exit::Refused.code(), 6);
    }

    #[test]
    fn help_lists_every_code() {
        let text = Exit::help_text();
        assert!(text.starts_with("Exit codes:\n  0  success\n  1  other error"));
        assert!(text.ends_with("\n 10  migrate: the source could not be brought back to running"));
        assert_eq!(text.lines().count(), Exit::ALL.len() + 1);
    }

    #[test]
    fn migrate_kinds_agree_with_the_engine() {
        use ivf_migrate::ErrorKind::*;
        for kind in [
            Usage,
            NoDevice,
            Unsupported,
            Busy,
            Refused,
            Source,
            Destination,
            Verify,
            Rollback,
            Other,
        ] {
            assert_eq!(Exit::from(kind).code(), kind.exit_code(), "{kind:?}");
            assert_eq!(format!("{:?}", Exit::from(kind)), format!("{kind:?}"));
        }
    }

    /// The table of Documentation/vfmig.rst lists the same codes.
    #[test]
    fn documentation_lists_the_same_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Documentation/vfmig.rst");
        let doc = std::fs::read_to_string(path).expect("Documentation/vfmig.rst");
        let table = doc
            .split("\nExit codes\n==========\n")
            .nth(1)
            .expect("an 'Exit codes' section");
        let documented: BTreeSet<u8> = table
            .lines()
            .filter_map(|l| {
                let (code, rest) = l.split_once("  ")?;
                rest.trim_start().chars().next()?;
                code.trim_end().parse().ok()
            })
            .collect();
        let ours: BTreeSet<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(documented, ours);
    }
}
