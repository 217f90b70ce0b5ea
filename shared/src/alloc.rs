//! The allocator of every function binary: mimalloc, asked the way the
//! system allocator is asked. The `mimalloc` crate hands every request to
//! `mi_malloc_aligned`, even the byte-aligned strings that are nearly all
//! of ingest's allocations (about 40 an event), and that path costs about
//! 75 instructions a call under callgrind. Every block mimalloc hands out
//! is at least word-aligned (its size classes are multiples of a word and
//! its pages start aligned), so a request that asks for no more than that
//! takes the plain `mi_malloc` path; any other keeps the aligned one.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc, plain for word-aligned requests.
pub struct Allocator;

/// Whether any mimalloc block meets the request's alignment.
#[inline]
fn plain(layout: &Layout) -> bool {
    layout.align() <= WORD
}

// SAFETY: each call goes to the mimalloc function of the same contract
// (`malloc`/`zalloc`/`realloc`/`free`, or their aligned forms), and the
// plain forms only for alignments every mimalloc block satisfies.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if plain(&layout) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if plain(&layout) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if plain(&layout) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever size and alignment is asked, the block has that
        /// alignment, holds what is written to all of it, and keeps its
        /// bytes through a realloc (the plain and the aligned paths alike).
        #[test]
        fn blocks_are_aligned_and_hold_their_bytes(size in 1usize..70_000, align_log in 0u32..13, grow in 1usize..70_000) {
            let layout = Layout::from_size_align(size, 1 << align_log).unwrap();
            let a = Allocator;
            unsafe {
                let p = a.alloc(layout);
                prop_assert!(!p.is_null());
                prop_assert_eq!(p as usize % layout.align(), 0);
                std::ptr::write_bytes(p, 0xab, size);
                let q = a.realloc(p, layout, grow);
                prop_assert_eq!(q as usize % layout.align(), 0);
                let kept = std::slice::from_raw_parts(q, size.min(grow));
                prop_assert!(kept.iter().all(|b| *b == 0xab));
                a.dealloc(q, Layout::from_size_align(grow, layout.align()).unwrap());
                let z = a.alloc_zeroed(layout);
                prop_assert_eq!(z as usize % layout.align(), 0);
                prop_assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
