//! The shim's C interface (`shim.cpp`). Tensors cross as `at::Tensor*`, which is what a tch
//! tensor's raw pointer is.

use std::ffi::{c_char, c_int, c_void};

/// An opaque `c10d::Store` handle.
#[repr(C)]
pub struct RawStore {
    _private: [u8; 0],
}

/// An opaque process-group handle.
#[repr(C)]
pub struct RawGroup {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub fn dist_free_error(err: *mut c_char);
    pub fn dist_has_nccl() -> c_int;
    pub fn dist_tcp_store(
        host: *const c_char,
        port: u16,
        is_server: c_int,
        world: c_int,
        timeout_ms: i64,
        prefix: *const c_char,
        out: *mut *mut RawStore,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_store_free(store: *mut RawStore);
    pub fn dist_store_set(
        store: *mut RawStore,
        key: *const c_char,
        value: *const u8,
        len: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_store_get(
        store: *mut RawStore,
        key: *const c_char,
        value: *mut *mut u8,
        len: *mut usize,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_free_bytes(value: *mut u8);
    pub fn dist_store_check(
        store: *mut RawStore,
        key: *const c_char,
        present: *mut c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_store_add(
        store: *mut RawStore,
        key: *const c_char,
        delta: i64,
        value: *mut i64,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_group_new(
        store: *mut RawStore,
        rank: c_int,
        world: c_int,
        backend: c_int,
        timeout_ms: i64,
        out: *mut *mut RawGroup,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_group_free(group: *mut RawGroup);
    pub fn dist_all_reduce(
        group: *mut RawGroup,
        tensor: *mut c_void,
        op: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_broadcast(
        group: *mut RawGroup,
        tensor: *mut c_void,
        root: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_all_gather(
        group: *mut RawGroup,
        input: *mut c_void,
        outputs: *const *mut c_void,
        world: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_reduce_scatter(
        group: *mut RawGroup,
        output: *mut c_void,
        inputs: *const *mut c_void,
        world: c_int,
        op: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn dist_barrier(group: *mut RawGroup, err: *mut *mut c_char) -> c_int;
}

/// Runs a shim call with an error slot; returns its message when it failed.
pub fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> Result<(), String> {
    let mut err: *mut c_char = std::ptr::null_mut();
    if f(&raw mut err) == 0 {
        return Ok(());
    }
    if err.is_null() {
        return Err("unknown error (no message)".to_owned());
    }
    // SAFETY: a failing shim call leaves a NUL-terminated malloc'ed message in `err`, which
    // is ours to free.
    let message = unsafe { std::ffi::CStr::from_ptr(err) }
        .to_string_lossy()
        .trim()
        .to_owned();
    // SAFETY: `err` came from the shim's allocator and is freed once.
    unsafe { dist_free_error(err) };
    Err(message)
}
