// SPDX-License-Identifier: GPL-2.0

//! Everything vfmig prints goes out through here, escaped.
//!
//! vfmig, often run as root, prints strings it did not write: the command
//! name of a VF's holder (`/proc/PID/comm`, which any process sets to what
//! it likes: a hostile QEMU can put escape sequences there), sysfs names
//! and attribute contents, paths, and the messages of the crates that read
//! them. Printed raw, a control sequence in any of them would drive the
//! terminal of whoever runs vfmig (retitle it, rewrite what it shows,
//! answer back into its input). So the rule is kept at the sink, not at
//! each string: every line is escaped as a whole as it is printed
//! ([`out`], [`err`], [`outln!`], [`errln!`]), and JSON once serialised
//! ([`json`]). The crate denies `println!` and `eprintln!` everywhere else
//! (clippy's `print_stdout` and `print_stderr`, in main.rs), so no output
//! can bypass this module. No vfmig line contains a control character of
//! its own, so escaping a whole line changes only the strings from outside.
//!
//! Bytes that are not UTF-8 (in a path, a command name) reach here as
//! U+FFFD, which is printable.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Prints a line on stdout: `format!` arguments, escaped ([`out`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::term::out(&format!($($arg)*))
    };
}

/// Prints a line on stderr: `format!` arguments, escaped ([`err`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::term::err(&format!($($arg)*))
    };
}

/// Invisible format characters that reorder, join or hide text: the
/// soft hyphen, bidirectional marks, embeddings, overrides and isolates,
/// zero-width characters, the line and paragraph separators, the BOM,
/// interlinear annotation. A name with them can be made to read as
/// another.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// Whether `c` is shown as the `\xNN` of its UTF-8 bytes rather than as
/// itself: the control characters (C0, DEL, C1), the invisible ones, and
/// backslash, so that no escape can be forged.
fn hidden(c: char) -> bool {
    c == '\\' || c.is_control() || invisible(c)
}

/// `text` with every [`hidden`] character as `\xNN`, a byte each (ESC is
/// `\x1b`, U+009B `\xc2\x9b`, backslash `\x5c`); the rest, non-ASCII
/// letters included, as it is.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text (from serde_json) with the [`hidden`] characters that
/// serde_json leaves raw (DEL, the C1 controls, the invisible ones) as
/// `\uXXXX`: the same JSON value, safe on a terminal. serde_json already
/// escapes the C0 controls, quotes and backslash inside strings; outside
/// them, only its own whitespace occurs, and such characters can only be
/// inside a string, where `\uXXXX` means the same.
pub(crate) fn escape_json(text: &str) -> Cow<'_, str> {
    let raw = |c: char| c >= '\u{7f}' && hidden(c);
    if !text.chars().any(raw) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw(c) {
            // Every such character is in the BMP: one \u escape.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Prints `line` on stdout, [`escape`]d.
#[allow(clippy::print_stdout)]
pub(crate) fn out(line: &str) {
    println!("{}", escape(line));
}

/// Prints `line` on stderr, [`escape`]d.
#[allow(clippy::print_stderr)]
pub(crate) fn err(line: &str) {
    eprintln!("{}", escape(line));
}

/// Prints JSON text on stdout, [`escape_json`]d.
#[allow(clippy::print_stdout)]
pub(crate) fn json(text: &str) {
    println!("{}", escape_json(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESC and the other control bytes (C0, DEL, C1), the invisible
    /// characters that reorder or hide text, and backslash itself (so
    /// that an escape cannot be forged) come out as \xNN, a byte each;
    /// the rest, non-ASCII letters included, as it is.
    #[test]
    fn control_bytes_are_escaped() {
        let cases = [
            ("qemu-system-x86", "qemu-system-x86"),
            ("\x1b[2J\x1b]0;owned\x07", "\\x1b[2J\\x1b]0;owned\\x07"),
            (
                "a\0b\tc\rd\ne\x08f\x7f",
                "a\\x00b\\x09c\\x0dd\\x0ae\\x08f\\x7f",
            ),
            ("\u{9b}31m\u{85}", "\\xc2\\x9b31m\\xc2\\x85"),
            (
                "evil\u{202e}txt.exe\u{2066}\u{200b}\u{feff}",
                "evil\\xe2\\x80\\xaetxt.exe\\xe2\\x81\\xa6\\xe2\\x80\\x8b\\xef\\xbb\\xbf",
            ),
            ("C:\\x1b", "C:\\x5cx1b"),
            ("Größe 中 é ", "Größe 中 é "),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape(raw), shown, "{raw:?}");
            assert!(!escape(raw).chars().any(|c| c.is_control()), "{raw:?}");
        }
        assert!(matches!(escape("plain text"), Cow::Borrowed(_)));
    }

    /// A holder's command name (any process sets its own: a hostile QEMU
    /// writes escape sequences there) is escaped in the busy message as
    /// vfmig prints it.
    #[test]
    fn a_hostile_holder_name_is_printed_escaped() {
        let bdf = "0000:01:10.0".parse().unwrap();
        let who = crate::holder_text(4242, b"qemu\x1b]0;root@host\x07\x1b[2J\xff\n");
        let f = crate::busy_failure(bdf, Some(who), &"EBUSY");
        let line = crate::error_line(&f);
        assert_eq!(
            escape(&line),
            "vfmig: 0000:01:10.0 is in use by pid 4242 (qemu\\x1b]0;root@host\\x07\\x1b[2J\u{fffd}); \
             the kernel refused the open: EBUSY"
        );
    }

    /// JSON keeps every string (serde_json escapes C0 controls, quotes
    /// and backslash); DEL, the C1 controls and the invisible characters,
    /// which it leaves raw, become \uXXXX: the same JSON value.
    #[test]
    fn json_keeps_the_string_and_escapes_the_rest() {
        let evil = "x\x1b[2J\x7f\u{9b}\u{202e}\\\"é";
        let text = serde_json::to_string_pretty(&serde_json::json!({ "comm": evil })).unwrap();
        let shown = escape_json(&text);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(!shown.contains('\u{202e}'), "{shown:?}");
        assert!(shown.contains("\\u007f\\u009b\\u202e"), "{shown:?}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["comm"], evil);
    }
}
