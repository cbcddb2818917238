//! The global allocator of the `relayscan` binary: mimalloc, called the
//! way its author advises for a language that gives every allocation an
//! alignment (microsoft/mimalloc#314).
//!
//! Rust passes an alignment with every request. mimalloc's aligned entry
//! points take their fast path only while the size class's page has a free
//! block at the right address; otherwise (v3) they over-allocate by the
//! alignment into a larger size class and mark the page as holding
//! interior pointers, which slows every later free on it. Most of a scan's
//! requests ask for an alignment that plain `mi_malloc` gives anyway: at
//! most 16 bytes, and no more than the size (on 64-bit targets mimalloc
//! rounds every block of more than 8 bytes to a multiple of 16 and aligns
//! it to 16, and a block of 8 bytes or less to 8). Only those go through
//! the plain calls; the rest (tokio's task cells are aligned to 128) keep
//! the aligned ones. This is the test the standard library's own `System`
//! allocator makes before calling `malloc`.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every mimalloc block of more than 8 bytes has (a block
/// of 8 bytes or less has 8, which `plain` allows only for requests of at
/// most that size).
#[cfg(target_pointer_width = "64")]
const MIN_ALIGN: usize = 16;
/// On 32-bit targets every block of 8 bytes or more is aligned to 8.
#[cfg(not(target_pointer_width = "64"))]
const MIN_ALIGN: usize = 8;

/// mimalloc, with the plain calls for the alignments they give anyway.
pub struct Mimalloc;

/// Whether plain `mi_malloc(size)` already satisfies `layout`'s alignment.
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every pointer handed out comes from mimalloc, satisfies the
// layout's alignment (see `plain`) and is freed with `mi_free`, which takes
// pointers from either family of calls.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: FFI calls with a size and a power-of-two alignment.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's
        // contract); the new block keeps the alignment, as in `alloc`.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout a program can ask for gets a block with its alignment,
    /// through either family of calls, and keeps it through realloc.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = Mimalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [
                1usize, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 48, 100, 1000, 1025, 5000, 70_000,
            ] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size; the block is freed below.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc size {size} align {align}");
                    p.write_bytes(0xa5, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(
                        grown as usize % align,
                        0,
                        "realloc size {size} align {align}"
                    );
                    assert_eq!(*grown.add(size - 1), 0xa5, "realloc keeps the bytes");
                    a.dealloc(grown, Layout::from_size_align_unchecked(size * 3, align));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(
                        z as usize % align,
                        0,
                        "alloc_zeroed size {size} align {align}"
                    );
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    /// Many blocks of one size class at once, so that pages fill and new
    /// ones start: each block still has its alignment.
    #[test]
    fn every_block_of_a_full_page_has_its_alignment() {
        let a = Mimalloc;
        for (size, align) in [
            (8usize, 8usize),
            (24, 16),
            (40, 8),
            (48, 16),
            (72, 8),
            (112, 16),
        ] {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            // SAFETY: non-zero sizes; every block is freed below.
            unsafe {
                let blocks: Vec<*mut u8> = (0..5000).map(|_| a.alloc(layout)).collect();
                for &p in &blocks {
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                }
                for p in blocks {
                    a.dealloc(p, layout);
                }
            }
        }
    }
}
