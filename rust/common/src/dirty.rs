// SPDX-License-Identifier: GPL-2.0

//! Dirty-range math for device DMA logging (`vfio_log_ops`): the logging
//! ranges a VMM asks for, checked, and the layout of the bounded bitmap
//! that records their pages (see [`super::tracker`]).
//!
//! Validation happens here, before any state is kept, so a hostile request
//! costs bounded work.

/// Most ranges a logging request may carry (the vfio core's limit).
pub const MAX_RANGES: usize = 256;
/// Smallest page size a report may use.
pub const MIN_PAGE_SIZE: u64 = 4096;

/// One logged IOVA range.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First IOVA.
    pub iova: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Range {
    /// One past the last IOVA (`None` if it wraps).
    pub fn end(&self) -> Option<u64> {
        self.iova.checked_add(self.len)
    }
}

/// Why a logging request was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// No range, or more than [`MAX_RANGES`].
    Count(usize),
    /// The page size is not a power of two of at least 4 KiB.
    PageSize(u64),
    /// A range is empty, wraps, or is not page aligned.
    Bad(Range),
    /// Two ranges overlap (or are not sorted).
    Overlap(Range, Range),
    /// The storage handed to the tracker is too small for the ranges.
    Storage,
}

/// A logged range with the first bit of its pages in the dirty bitmap.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LoggedRange {
    /// The range.
    pub range: Range,
    /// Bit of its first page (filled in by [`check`]).
    pub first_bit: u64,
}

/// Most bits of a dirty bitmap (2 MiB of memory); beyond, the page size
/// grows until the bitmap fits.
pub const MAX_BITS: u64 = 1 << 24;

/// Pages of `1 << shift` bytes that `r` touches.
pub fn pages_spanned(r: &Range, shift: u32) -> u64 {
    let last = r.iova + (r.len - 1);
    (last >> shift) - (r.iova >> shift) + 1
}

/// Sorts `ranges` by IOVA: an insertion sort, at most [`MAX_RANGES`]²/2
/// swaps. Not `core`'s sort: built by rustc 1.85 its small-sort ends in
/// calls that Linux 7.3's objtool does not know as noreturn ("falls
/// through to next function" warnings in the module).
fn sort_by_iova(ranges: &mut [LoggedRange]) {
    for i in 1..ranges.len() {
        let mut j = i;
        while j > 0 && ranges[j - 1].range.iova > ranges[j].range.iova {
            ranges.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Checks a logging request in place: sorts `ranges`, refuses empty,
/// wrapping, unaligned or overlapping ones and a bad page size, chooses the
/// bitmap's page size (`page_size`, or the smallest power of two above it
/// that keeps the bitmap within [`MAX_BITS`]) and fills in each range's
/// first bit. Returns (page size, bitmap words).
pub fn check(ranges: &mut [LoggedRange], page_size: u64) -> Result<(u64, usize), RangeError> {
    if ranges.is_empty() || ranges.len() > MAX_RANGES {
        return Err(RangeError::Count(ranges.len()));
    }
    if page_size < MIN_PAGE_SIZE || !page_size.is_power_of_two() {
        return Err(RangeError::PageSize(page_size));
    }
    for r in ranges.iter() {
        let r = r.range;
        let aligned = r.iova % page_size == 0 && r.len % page_size == 0;
        if r.len == 0 || r.end().is_none() || !aligned {
            return Err(RangeError::Bad(r));
        }
    }
    sort_by_iova(ranges);
    for w in ranges.windows(2) {
        // `end` cannot wrap: checked above.
        if w[0].range.end().unwrap_or(u64::MAX) > w[1].range.iova {
            return Err(RangeError::Overlap(w[0].range, w[1].range));
        }
    }
    let mut shift = page_size.trailing_zeros();
    loop {
        let bits: u64 = ranges.iter().map(|r| pages_spanned(&r.range, shift)).sum();
        if bits <= MAX_BITS || shift >= 63 {
            let mut next = 0;
            for r in ranges.iter_mut() {
                r.first_bit = next;
                next += pages_spanned(&r.range, shift);
            }
            return Ok((1 << shift, bits.div_ceil(64) as usize));
        }
        shift += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    fn lr(iova: u64, len: u64) -> LoggedRange {
        LoggedRange {
            range: Range { iova, len },
            first_bit: 0,
        }
    }

    #[test]
    fn validation() {
        assert!(check(&mut [], P).is_err());
        assert_eq!(
            check(&mut [lr(0, P)], 3000),
            Err(RangeError::PageSize(3000))
        );
        assert!(matches!(check(&mut [lr(1, P)], P), Err(RangeError::Bad(_))));
        assert!(matches!(
            check(&mut [lr(u64::MAX - P + 1, 2 * P)], P),
            Err(RangeError::Bad(_))
        ));
        assert!(matches!(
            check(&mut [lr(4 * P, 2 * P), lr(0, 5 * P)], P),
            Err(RangeError::Overlap(..))
        ));
        let mut ok = [lr(8 * P, P), lr(0, 2 * P)];
        assert_eq!(check(&mut ok, P), Ok((P, 1)));
        assert_eq!(ok[0].range.iova, 0, "sorted");
        assert_eq!((ok[0].first_bit, ok[1].first_bit), (0, 2));
    }

    #[test]
    fn page_size_grows_to_bound_the_bitmap() {
        let mut huge = [lr(0, 1 << 46)];
        let (ps, words) = check(&mut huge, P).unwrap();
        assert_eq!(ps, 1 << 22);
        assert!(words as u64 * 64 <= MAX_BITS);
        let mut many = [lr(0, P), lr(1 << 40, 1 << 40)];
        let (ps, _) = check(&mut many, P).unwrap();
        assert_eq!(many[1].first_bit, 1, "the small range keeps one bit");
        assert!(ps > P);
    }
}
