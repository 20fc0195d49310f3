//! c10d's `TCPStore`: the key-value rendezvous every rank of a job reaches.

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::ffi;

struct Handle(*mut ffi::RawStore);

// SAFETY: c10d stores are thread-safe (every operation takes the client's lock).
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle was created by `dist_tcp_store` and is freed once.
        unsafe { ffi::dist_store_free(self.0) };
    }
}

/// A connection to (or, on the serving rank, the server of) a `TCPStore`; clones share it.
#[derive(Clone)]
pub struct Store {
    handle: Arc<Handle>,
    address: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn c_string(what: &str, s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{what} `{s}` contains a NUL byte")))
}

impl Store {
    /// Serves (`serve`) or joins the store at `host:port` of a job of `world` processes, waiting
    /// up to `timeout` for it; keys are namespaced under `prefix` (empty for none).
    pub fn tcp(
        host: &str,
        port: u16,
        serve: bool,
        world: usize,
        timeout: Duration,
        prefix: &str,
    ) -> Result<Self, Error> {
        let address = format!("{host}:{port}");
        let c_host = c_string("the store host", host)?;
        let c_prefix = c_string("the store prefix", prefix)?;
        let mut raw = std::ptr::null_mut();
        ffi::call(|err| {
            // SAFETY: the strings outlive the call; `raw` receives a new handle on success.
            unsafe {
                ffi::dist_tcp_store(
                    c_host.as_ptr(),
                    port,
                    i32::from(serve),
                    world as i32,
                    millis(timeout),
                    c_prefix.as_ptr(),
                    &raw mut raw,
                    err,
                )
            }
        })
        .map_err(|message| Error::Store {
            operation: if serve { "serving" } else { "joining" }.to_owned(),
            address: address.clone(),
            message,
        })?;
        Ok(Self {
            handle: Arc::new(Handle(raw)),
            address,
        })
    }

    /// `host:port` of the store.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn raw(&self) -> *mut ffi::RawStore {
        self.handle.0
    }

    fn error(&self, operation: &str, key: &str, message: String) -> Error {
        Error::Store {
            operation: format!("{operation} `{key}`"),
            address: self.address.clone(),
            message,
        }
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        let c_key = c_string("a store key", key)?;
        ffi::call(|err| {
            // SAFETY: the key and value outlive the call.
            unsafe {
                ffi::dist_store_set(self.raw(), c_key.as_ptr(), value.as_ptr(), value.len(), err)
            }
        })
        .map_err(|m| self.error("setting", key, m))
    }

    /// The value of `key`, waiting up to the store's timeout for some rank to set it.
    pub fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let c_key = c_string("a store key", key)?;
        let mut data = std::ptr::null_mut();
        let mut len = 0;
        ffi::call(|err| {
            // SAFETY: the out-pointers are valid; on success `data` holds `len` malloc'ed bytes.
            unsafe {
                ffi::dist_store_get(self.raw(), c_key.as_ptr(), &raw mut data, &raw mut len, err)
            }
        })
        .map_err(|m| self.error("getting", key, m))?;
        // SAFETY: `data` holds `len` initialised bytes from the shim's allocator, freed once.
        let value = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
        // SAFETY: as above.
        unsafe { ffi::dist_free_bytes(data) };
        Ok(value)
    }

    /// Whether `key` is set (without waiting).
    pub fn check(&self, key: &str) -> Result<bool, Error> {
        let c_key = c_string("a store key", key)?;
        let mut present = 0;
        ffi::call(|err| {
            // SAFETY: the key outlives the call; `present` is a valid out-pointer.
            unsafe { ffi::dist_store_check(self.raw(), c_key.as_ptr(), &raw mut present, err) }
        })
        .map_err(|m| self.error("checking", key, m))?;
        Ok(present != 0)
    }

    /// Adds `delta` to the counter `key` (0 when unset) and returns its new value.
    pub fn add(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let c_key = c_string("a store key", key)?;
        let mut value = 0;
        ffi::call(|err| {
            // SAFETY: the key outlives the call; `value` is a valid out-pointer.
            unsafe { ffi::dist_store_add(self.raw(), c_key.as_ptr(), delta, &raw mut value, err) }
        })
        .map_err(|m| self.error("adding to", key, m))?;
        Ok(value)
    }
}

/// A duration in whole milliseconds, as c10d takes it.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
