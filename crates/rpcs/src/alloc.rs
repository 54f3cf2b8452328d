//! The process's allocator, and how it gives memory back to the system.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

// A server allocates and frees small buffers for every call; mimalloc does that
// markedly faster than the system allocator under concurrency.
#[global_allocator]
static GLOBAL: Allocator = Allocator;

/// mimalloc's option numbers (mimalloc.h, v3, the -sys crate's default), which
/// the crate does not name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Makes mimalloc give freed memory back to the system at once. By default it
/// purges freed pages only a while later, on a later allocation by the same
/// thread, so the buffers of a few large calls (a `pushMany` of 10,000 items)
/// can stay resident for good.
pub fn return_freed_memory() {
    // SAFETY: setting an option is a plain store into mimalloc's option table,
    // safe at any time; purge_delay is read on every purge.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

/// Stops using transparent huge pages from now on. mimalloc asks for them on
/// its arenas (the kernel's THP mode is `madvise` on most distributions), and
/// then each touched 4 KiB page of a sparse region can make 2 MiB resident: a
/// million small stack items cost the master 41 bytes each in RSS instead of
/// 23. Huge pages do make loading a large store twice as fast, so the master
/// calls this once its state is loaded; what is already on huge pages is dense
/// and stays as it is.
pub fn stop_huge_pages() {
    // SAFETY: as above; allow_thp is read each time memory is taken from the
    // system.
    unsafe { libmimalloc_sys::mi_option_set(ALLOW_THP, 0) }
    // The arenas mimalloc already has are marked for huge pages; this turns
    // THP off for the whole process, them included (what mimalloc itself does
    // when the option comes from the environment at start).
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; a failure (an old kernel) only leaves THP as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Allocations from this size on count as large: the buffers of a call with
/// many items (its request, the vector of its decoded values, the items'
/// encodings) and the growth of large stacks.
const LARGE: usize = 64 * 1024;
/// Large allocations a thread makes before it gives back its free memory the
/// next time it goes idle.
const COLLECT_AFTER: usize = 1024 * 1024;

thread_local! {
    /// Bytes of large allocations this thread made since its last collection.
    static LARGE_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// mimalloc, counting each thread's large allocations so that a thread which
/// served large calls can give their memory back once it goes idle.
pub struct Allocator;

// SAFETY: every allocation is mimalloc's, unchanged; the counting only reads
// and writes a thread-local integer (no destructor, const-initialized, so it
// never allocates).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    if size >= LARGE {
        let _ = LARGE_BYTES.try_with(|bytes| bytes.set(bytes.get().saturating_add(size)));
    }
}

/// Called when a runtime thread goes idle: if it made large allocations since
/// it last did this, lets mimalloc give back what its heap holds free. A
/// thread keeps the pages freed by its last large call for its next one, so
/// on a master that then sits idle they would stay resident for good (about
/// 2 MB after a few `pushMany` calls of 10,000 items, as much as 100,000 such
/// items take on a stack). Collecting each time a thread went idle halved a
/// single connection's calls per second, which is why threads serving small
/// calls never do it.
pub fn collect_after_large_calls() {
    let due = LARGE_BYTES
        .try_with(|bytes| bytes.replace(0) >= COLLECT_AFTER)
        .unwrap_or(false);
    if due {
        // SAFETY: mi_collect only walks and releases the calling thread's own
        // heap; it is safe to call at any time from any thread.
        unsafe { libmimalloc_sys::mi_collect(true) }
    }
}
