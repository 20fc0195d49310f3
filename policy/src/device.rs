//! What libtorch this process runs on and which CUDA devices it can use.
//!
//! `metaspatial-rl doctor` prints this report. Device names and memory come from the CUDA
//! driver API (`libcuda.so.1`, loaded at run time) because libtorch's C API does not expose
//! device properties.

use std::path::{Path, PathBuf};

use libloading::{Library, Symbol};

/// The libtorch this process loaded and what it can do.
#[derive(Debug, Clone)]
pub struct TorchReport {
    /// Where `libtorch_cpu.so` was loaded from, if it could be found in the process's maps.
    pub library: Option<PathBuf>,
    /// Version of the loaded library (e.g. `2.11.0+cu130`).
    pub version: String,
    /// Threads libtorch uses for intra-op parallelism.
    pub threads: i32,
    /// Whether `libtorch_cuda.so` is loaded into this process (it must be, for CUDA to work).
    pub cuda_linked: bool,
    /// Whether a `libtorch_cuda.so` sits beside the loaded library (a CUDA build of torch).
    pub cuda_library_present: bool,
    /// CUDA devices usable by libtorch, empty when none.
    pub cuda: Option<CudaReport>,
}

/// CUDA as libtorch sees it.
#[derive(Debug, Clone)]
pub struct CudaReport {
    /// CUDA runtime version libtorch was built with, e.g. `13.0`.
    pub runtime: String,
    /// cuDNN version, when cuDNN is available.
    pub cudnn: Option<String>,
    /// Driver API version, e.g. `13.0`.
    pub driver: Option<String>,
    /// The devices, in CUDA order.
    pub devices: Vec<GpuInfo>,
}

/// One CUDA device.
#[derive(Debug, Clone)]
pub struct GpuInfo {
    /// CUDA device index.
    pub index: usize,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Total device memory in bytes.
    pub total_memory: u64,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
}

/// Inspects the libtorch loaded into this process.
#[must_use]
pub fn torch_report() -> TorchReport {
    let library = loaded_library("libtorch_cpu.so");
    let version = library
        .as_deref()
        .and_then(version_beside)
        .unwrap_or_else(|| "unknown".to_owned());
    let cuda_library_present = library
        .as_deref()
        .and_then(Path::parent)
        .is_some_and(|dir| dir.join("libtorch_cuda.so").exists());
    let cuda = tch::Cuda::is_available().then(cuda_report);
    TorchReport {
        library,
        version,
        threads: tch::get_num_threads(),
        cuda_linked: loaded_library("libtorch_cuda.so").is_some(),
        cuda_library_present,
        cuda,
    }
}

fn cuda_report() -> CudaReport {
    let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    let driver = CudaDriver::load();
    let devices = (0..count)
        .map(|index| match &driver {
            Some(driver) => driver.device(index),
            None => GpuInfo {
                index,
                name: "unknown (libcuda.so.1 not loadable)".to_owned(),
                total_memory: 0,
                compute_capability: (0, 0),
            },
        })
        .collect();
    CudaReport {
        runtime: cuda_version(tch::utils::version_cudart()),
        cudnn: tch::Cuda::cudnn_is_available().then(|| {
            let v = tch::utils::version_cudnn();
            format!("{}.{}.{}", v / 10_000, v / 100 % 100, v % 100)
        }),
        driver: driver.as_ref().and_then(CudaDriver::version),
        devices,
    }
}

/// CUDA encodes versions as `1000 * major + 10 * minor`.
fn cuda_version(v: i64) -> String {
    format!("{}.{}", v / 1000, v % 1000 / 10)
}

/// Finds the path of a shared library mapped into this process.
fn loaded_library(file_name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|name| name == file_name)
        })
        .map(PathBuf::from)
}

/// Reads `__version__` from the `version.py` of the torch package that holds `lib/<library>`.
fn version_beside(library: &Path) -> Option<String> {
    let torch_dir = library.parent()?.parent()?;
    let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
    text.lines().find_map(|line| {
        let value = line
            .strip_prefix("__version__")?
            .trim_start()
            .strip_prefix('=')?;
        Some(
            value
                .trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .to_owned(),
        )
    })
}

/// The few CUDA driver API entry points the report needs.
struct CudaDriver {
    library: Library,
}

type CuResult = i32;

impl CudaDriver {
    fn load() -> Option<Self> {
        // SAFETY: libcuda's initialisers have no preconditions; we only call documented entry
        // points with the signatures of the CUDA driver API.
        let library = unsafe { Library::new("libcuda.so.1") }.ok()?;
        let driver = Self { library };
        let init: Symbol<unsafe extern "C" fn(u32) -> CuResult> = driver.symbol(b"cuInit\0")?;
        // SAFETY: cuInit takes a flags word that must be 0.
        (unsafe { init(0) } == 0).then_some(driver)
    }

    fn symbol<T>(&self, name: &[u8]) -> Option<Symbol<'_, T>> {
        // SAFETY: callers name the driver API function whose C signature `T` spells.
        unsafe { self.library.get(name) }.ok()
    }

    fn version(&self) -> Option<String> {
        let get: Symbol<unsafe extern "C" fn(*mut i32) -> CuResult> =
            self.symbol(b"cuDriverGetVersion\0")?;
        let mut version = 0;
        // SAFETY: writes one int through a valid pointer.
        (unsafe { get(&raw mut version) } == 0).then(|| cuda_version(i64::from(version)))
    }

    fn device(&self, index: usize) -> GpuInfo {
        let mut info = GpuInfo {
            index,
            name: "unknown".to_owned(),
            total_memory: 0,
            compute_capability: (0, 0),
        };
        let Some(get) =
            self.symbol::<unsafe extern "C" fn(*mut i32, i32) -> CuResult>(b"cuDeviceGet\0")
        else {
            return info;
        };
        let mut device = 0;
        // SAFETY: writes one device handle (an int) through a valid pointer.
        if unsafe { get(&raw mut device, index as i32) } != 0 {
            return info;
        }
        if let Some(get_name) =
            self.symbol::<unsafe extern "C" fn(*mut u8, i32, i32) -> CuResult>(b"cuDeviceGetName\0")
        {
            let mut buffer = [0u8; 256];
            // SAFETY: the driver writes a NUL-terminated name of at most `len` bytes.
            if unsafe { get_name(buffer.as_mut_ptr(), buffer.len() as i32, device) } == 0 {
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                info.name = String::from_utf8_lossy(&buffer[..end]).into_owned();
            }
        }
        if let Some(total) = self
            .symbol::<unsafe extern "C" fn(*mut usize, i32) -> CuResult>(b"cuDeviceTotalMem_v2\0")
        {
            let mut bytes = 0usize;
            // SAFETY: writes one size_t through a valid pointer.
            if unsafe { total(&raw mut bytes, device) } == 0 {
                info.total_memory = bytes as u64;
            }
        }
        if let Some(attribute) = self
            .symbol::<unsafe extern "C" fn(*mut i32, i32, i32) -> CuResult>(
                b"cuDeviceGetAttribute\0",
            )
        {
            // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
            let (mut major, mut minor) = (0, 0);
            // SAFETY: each call writes one int through a valid pointer.
            unsafe {
                attribute(&raw mut major, 75, device);
                attribute(&raw mut minor, 76, device);
            }
            info.compute_capability = (major, minor);
        }
        info
    }
}

/// Memory in use on one GPU, device-wide as `nvidia-smi` shows it (libtorch's caching
/// allocator included), read through the CUDA driver from any thread.
pub struct GpuMemory {
    driver: CudaDriver,
    device: i32,
    context: *mut std::ffi::c_void,
}

// SAFETY: a retained primary context may be made current on any thread; `used` does so before
// every query.
unsafe impl Send for GpuMemory {}

impl GpuMemory {
    /// Retains GPU `index`'s primary context (the one libtorch uses, so nothing new is
    /// allocated); `None` without a CUDA driver or that device.
    #[must_use]
    pub fn open(index: usize) -> Option<Self> {
        let driver = CudaDriver::load()?;
        let (device, context) = {
            let get: Symbol<unsafe extern "C" fn(*mut i32, i32) -> CuResult> =
                driver.symbol(b"cuDeviceGet\0")?;
            let retain: Symbol<unsafe extern "C" fn(*mut *mut std::ffi::c_void, i32) -> CuResult> =
                driver.symbol(b"cuDevicePrimaryCtxRetain\0")?;
            let mut device = 0;
            let mut context = std::ptr::null_mut();
            // SAFETY: each call writes one handle through a valid pointer.
            let ok = unsafe {
                get(&raw mut device, i32::try_from(index).ok()?) == 0
                    && retain(&raw mut context, device) == 0
            };
            if !ok {
                return None;
            }
            (device, context)
        };
        Some(Self {
            driver,
            device,
            context,
        })
    }

    /// Bytes in use on the device now.
    #[must_use]
    pub fn used(&self) -> Option<u64> {
        let set: Symbol<unsafe extern "C" fn(*mut std::ffi::c_void) -> CuResult> =
            self.driver.symbol(b"cuCtxSetCurrent\0")?;
        let info: Symbol<unsafe extern "C" fn(*mut usize, *mut usize) -> CuResult> =
            self.driver.symbol(b"cuMemGetInfo_v2\0")?;
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: the context was retained by `open`; cuMemGetInfo writes two size_t.
        let ok = unsafe { set(self.context) == 0 && info(&raw mut free, &raw mut total) == 0 };
        ok.then(|| (total - free) as u64)
    }
}

impl Drop for GpuMemory {
    fn drop(&mut self) {
        if let Some(release) = self
            .driver
            .symbol::<unsafe extern "C" fn(i32) -> CuResult>(b"cuDevicePrimaryCtxRelease_v2\0")
        {
            // SAFETY: releases the reference `open` retained.
            unsafe { release(self.device) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_versions_decode() {
        assert_eq!(cuda_version(13_000), "13.0");
        assert_eq!(cuda_version(12_080), "12.8");
    }

    #[test]
    fn report_finds_the_loaded_libtorch_and_its_version() {
        let report = torch_report();
        let library = report
            .library
            .expect("libtorch_cpu.so is mapped into the test binary");
        assert!(
            library.ends_with("lib/libtorch_cpu.so"),
            "{}",
            library.display()
        );
        assert!(
            report.version.starts_with("2.11.0"),
            "version {}",
            report.version
        );
        assert!(report.threads >= 1);
        // libtorch_cuda must stay linked whenever the wheel ships it (see build-support).
        assert_eq!(report.cuda_linked, report.cuda_library_present);
    }
}
