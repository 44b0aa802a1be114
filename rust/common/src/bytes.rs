// SPDX-License-Identifier: GPL-2.0

//! Slice copies without a panic path.
//!
//! `<[T]>::copy_from_slice` panics on a length mismatch through a function
//! the kernel's objtool does not know to be noreturn (with rustc 1.95 it
//! reports a fall-through). Every copy here has equal lengths by
//! construction; this one simply copies what both sides have.

/// Copies `src` into the start of `dst`, as many elements as both hold.
pub fn copy_into<T: Copy>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}
