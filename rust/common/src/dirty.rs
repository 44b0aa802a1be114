// SPDX-License-Identifier: GPL-2.0

//! Dirty-range math for device DMA logging (`vfio_log_ops`): the logging
//! ranges a VMM asks for, checked and bounded, and the mapping of DMA
//! writes (by IOVA and length) onto the pages a report must mark.
//!
//! Groundwork for the dirty tracker: validation happens here, before any
//! state is kept, so a hostile request costs bounded work.

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
}

impl RangeError {
    /// Linux errno (positive): EINVAL for all of them, as the uAPI says.
    pub const fn errno(&self) -> i32 {
        22
    }
}

/// A checked logging request: sorted, disjoint, page-aligned ranges.
#[derive(Clone, Debug)]
pub struct Ranges {
    ranges: [Range; MAX_RANGES],
    count: usize,
    page_size: u64,
}

impl Ranges {
    /// Checks `ranges` (any order) for `page_size`.
    pub fn new(ranges: &[Range], page_size: u64) -> Result<Ranges, RangeError> {
        if ranges.is_empty() || ranges.len() > MAX_RANGES {
            return Err(RangeError::Count(ranges.len()));
        }
        if page_size < MIN_PAGE_SIZE || !page_size.is_power_of_two() {
            return Err(RangeError::PageSize(page_size));
        }
        let mut out = Ranges {
            ranges: [Range::default(); MAX_RANGES],
            count: ranges.len(),
            page_size,
        };
        for (slot, r) in out.ranges.iter_mut().zip(ranges) {
            let aligned = r.iova % page_size == 0 && r.len % page_size == 0;
            if r.len == 0 || r.end().is_none() || !aligned {
                return Err(RangeError::Bad(*r));
            }
            *slot = *r;
        }
        out.ranges[..out.count].sort_unstable_by_key(|r| r.iova);
        for w in out.ranges[..out.count].windows(2) {
            // `end` cannot wrap: checked above.
            if w[0].end().unwrap_or(u64::MAX) > w[1].iova {
                return Err(RangeError::Overlap(w[0], w[1]));
            }
        }
        Ok(out)
    }

    /// The ranges, sorted.
    pub fn as_slice(&self) -> &[Range] {
        &self.ranges[..self.count]
    }

    /// The report's page size.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Whether `iova` lies in a logged range (binary search).
    pub fn contains(&self, iova: u64) -> bool {
        let s = self.as_slice();
        let i = s.partition_point(|r| r.iova <= iova);
        i > 0 && s[i - 1].end().is_some_and(|e| iova < e)
    }

    /// Calls `mark` with the first IOVA of every logged page that a DMA
    /// write of `len` bytes at `iova` touches. Work is bounded by the pages
    /// of the write, which callers bound by the ring's buffer sizes.
    pub fn pages_of(&self, iova: u64, len: u64, mut mark: impl FnMut(u64)) {
        if len == 0 {
            return;
        }
        let Some(last) = iova.checked_add(len - 1) else {
            return;
        };
        let mut page = iova & !(self.page_size - 1);
        loop {
            if self.contains(page) {
                mark(page);
            }
            match page.checked_add(self.page_size) {
                Some(next) if next <= last => page = next,
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    #[test]
    fn validation() {
        let r = |iova, len| Range { iova, len };
        assert!(Ranges::new(&[], P).is_err());
        assert_eq!(
            Ranges::new(&[r(0, P)], 3000).unwrap_err(),
            RangeError::PageSize(3000)
        );
        assert!(matches!(
            Ranges::new(&[r(1, P)], P),
            Err(RangeError::Bad(_))
        ));
        assert!(matches!(
            Ranges::new(&[r(u64::MAX - P + 1, 2 * P)], P),
            Err(RangeError::Bad(_))
        ));
        assert!(matches!(
            Ranges::new(&[r(4 * P, 2 * P), r(0, 5 * P)], P),
            Err(RangeError::Overlap(..))
        ));
        let ok = Ranges::new(&[r(8 * P, P), r(0, 2 * P)], P).unwrap();
        assert_eq!(ok.as_slice()[0].iova, 0, "sorted");
        assert!(ok.contains(P) && !ok.contains(2 * P) && ok.contains(8 * P));
    }

    #[test]
    fn pages_of_a_write() {
        let ok = Ranges::new(
            &[Range {
                iova: 0,
                len: 4 * P,
            }],
            P,
        )
        .unwrap();
        let mut n = 0;
        let mut first = u64::MAX;
        ok.pages_of(P - 1, 2, |p| {
            n += 1;
            first = first.min(p);
        });
        assert_eq!(
            (n, first),
            (2, 0),
            "a write across a page boundary marks both"
        );
        let mut m = 0;
        ok.pages_of(3 * P, 10 * P, |_| m += 1);
        assert_eq!(m, 1, "only logged pages are marked");
        ok.pages_of(u64::MAX - 1, 100, |_| panic!("wrapping write"));
    }
}
