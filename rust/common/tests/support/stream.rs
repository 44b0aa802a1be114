// SPDX-License-Identifier: GPL-2.0

//! Streams built section by section, and taken apart again: what the
//! tests forge bad streams from.

#![allow(dead_code)]

use ivf_common::stream::{self, Header, Writer};

/// A section as the tests hold it: tag, flags, payload.
pub type Section = (u16, u16, Vec<u8>);

/// A frame of header `h` with these sections, in this order.
pub fn build(h: Header, sections: &[Section]) -> Vec<u8> {
    let mut buf = vec![0u8; stream::MAX_STREAM_LEN];
    let mut w = Writer::new(&mut buf, h).unwrap();
    for (tag, flags, payload) in sections {
        w.section(*tag, *flags, payload).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// The sections of a well-formed frame, in order.
pub fn sections(frame: &[u8]) -> Vec<Section> {
    let (_, secs) = stream::parse(frame).unwrap();
    secs.map(|s| (s.tag, s.flags, s.payload.to_vec())).collect()
}
