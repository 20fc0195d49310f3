//! A quick check of the machine's wgpu support: which adapters exist and whether a headless
//! frame renders and reads back correctly. `metaspatial-rl doctor` prints both.

use std::time::{Duration, Instant};

use thiserror::Error;

/// One adapter wgpu can see.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Device name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Graphics API, e.g. `Vulkan`.
    pub backend: String,
    /// Integrated, discrete, virtual or CPU.
    pub device_type: String,
    /// Driver name and version, where the driver reports them.
    pub driver: String,
}

impl From<wgpu::AdapterInfo> for AdapterSummary {
    fn from(info: wgpu::AdapterInfo) -> Self {
        let driver = [info.driver, info.driver_info]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver,
        }
    }
}

/// The result of a successful test frame.
#[derive(Debug, Clone)]
pub struct FrameCheck {
    /// The adapter that rendered it.
    pub adapter: AdapterSummary,
    /// Width and height of the frame in pixels.
    pub size: (u32, u32),
    /// Time from device creation to the checked pixels, including shader compilation.
    pub elapsed: Duration,
}

/// Why the test frame failed.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// No adapter at all: no Vulkan driver, not even a software one.
    #[error(
        "no graphics adapter found: install a Vulkan driver (on Debian without a GPU: \
         `apt-get install mesa-vulkan-drivers libvulkan1`)"
    )]
    NoAdapter(#[from] wgpu::RequestAdapterError),
    /// The adapter refused to create a device.
    #[error("the adapter could not create a device: {0}")]
    Device(#[from] wgpu::RequestDeviceError),
    /// Waiting for the GPU failed.
    #[error("waiting for the GPU failed: {0}")]
    Poll(#[from] wgpu::PollError),
    /// Mapping the readback buffer failed.
    #[error("reading the frame back failed: {0}")]
    Map(#[from] wgpu::BufferAsyncError),
    /// The mapped buffer could not be viewed.
    #[error("viewing the read-back frame failed: {0}")]
    MapRange(#[from] wgpu::MapRangeError),
    /// The frame rendered, but with the wrong pixels.
    #[error("the test frame has pixel {pixel:?} = {got:?}, expected {expected:?}")]
    WrongPixel {
        /// (x, y) of the checked pixel.
        pixel: (u32, u32),
        /// RGBA read back.
        got: [u8; 4],
        /// RGBA expected.
        expected: [u8; 4],
    },
}

/// Every adapter wgpu can see on any enabled backend.
#[must_use]
pub fn adapters() -> Vec<AdapterSummary> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|adapter| adapter.get_info().into())
        .collect()
}

// Odd width on purpose: 50 RGBA8 pixels are 200 bytes, so readback must handle row padding.
const WIDTH: u32 = 50;
const HEIGHT: u32 = 40;
const CLEAR: [u8; 4] = [0, 0, 255, 255];
const FILL: [u8; 4] = [255, 0, 0, 255];

const SHADER: &str = r"
@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // A triangle around the centre that leaves the corners uncovered.
    let p = array(vec2(-0.5, -0.5), vec2(0.5, -0.5), vec2(0.0, 0.5));
    return vec4(p[i], 0.0, 1.0);
}

@fragment
fn fs() -> @location(0) vec4<f32> {
    return vec4(1.0, 0.0, 0.0, 1.0);
}
";

/// Renders a small frame headlessly on the default adapter and checks its pixels.
pub fn test_frame() -> Result<FrameCheck, ProbeError> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))?;
    let start = Instant::now();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;

    let format = wgpu::TextureFormat::Rgba8Unorm;
    let extent = wgpu::Extent3d {
        width: WIDTH,
        height: HEIGHT,
        depth_or_array_layers: 1,
    };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("probe target"),
        size: extent,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("probe shader"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("probe pipeline"),
        layout: None,
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            targets: &[Some(format.into())],
        }),
        multiview_mask: None,
        cache: None,
    });

    let padded_row = (WIDTH * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("probe readback"),
        size: u64::from(padded_row * HEIGHT),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });

    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("probe pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: 0.0,
                        g: 0.0,
                        b: 1.0,
                        a: 1.0,
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&pipeline);
        pass.draw(0..3, 0..1);
    }
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded_row),
                rows_per_image: Some(HEIGHT),
            },
        },
        extent,
    );
    queue.submit([encoder.finish()]);

    let (sender, receiver) = std::sync::mpsc::channel();
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |result| {
            // The receiver outlives the poll below; a send can only fail if we already returned.
            let _ = sender.send(result);
        });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    receiver
        .recv()
        .expect("map_async callback runs during poll")?;

    let pixels = readback.slice(..).get_mapped_range()?;
    let pixel = |x: u32, y: u32| -> [u8; 4] {
        let at = (y * padded_row + x * 4) as usize;
        [pixels[at], pixels[at + 1], pixels[at + 2], pixels[at + 3]]
    };
    let checks = [
        ((WIDTH / 2, HEIGHT / 2), FILL),
        ((0, 0), CLEAR),
        ((WIDTH - 1, HEIGHT - 1), CLEAR),
    ];
    for (at, expected) in checks {
        let got = pixel(at.0, at.1);
        if got != expected {
            return Err(ProbeError::WrongPixel {
                pixel: at,
                got,
                expected,
            });
        }
    }
    Ok(FrameCheck {
        adapter: adapter.get_info().into(),
        size: (WIDTH, HEIGHT),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frame_renders_and_reads_back_where_an_adapter_exists() {
        if adapters().is_empty() {
            eprintln!("skipped: no wgpu adapter on this machine (install mesa-vulkan-drivers)");
            return;
        }
        let check = test_frame().expect("test frame");
        assert_eq!(check.size, (WIDTH, HEIGHT));
    }
}
