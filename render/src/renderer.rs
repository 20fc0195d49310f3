//! The renderer: owns the wgpu device, builds its pipelines once and draws batches of scenes,
//! one array layer per scene, in one submission with one readback.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use bytemuck::{Pod, Zeroable};
use glam::Vec3;

use crate::font::draw_labels;
use crate::mesh::{MeshData, Vertex};
use crate::scene::{SceneObject, WALL_THICKNESS};
use crate::{Camera, Frame, RenderError, Scene, View};

const COLOR_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
const ID_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::R32Uint;
const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
/// Every output format has 4 bytes per pixel, so one padded row size serves all three.
const BYTES_PER_PIXEL: u32 = 4;
/// Per-scene slots in uniform and storage buffers are aligned to this (wgpu's minimum offset
/// alignment on every backend we target).
const SLOT_ALIGN: u64 = 256;
/// Most scenes drawn per submission; larger batches are split.
const MAX_BATCH: usize = 64;
/// Clear colour outside the room.
const BACKGROUND: wgpu::Color = wgpu::Color {
    r: 0.96,
    g: 0.96,
    b: 0.97,
    a: 1.0,
};
const FLOOR_COLOR: [f32; 3] = [0.82, 0.76, 0.64];
const WALL_COLOR: [f32; 3] = [0.9, 0.9, 0.88];
/// Direction towards the light: from above, slightly south-west, so that the top, south and
/// west faces of a box all get different shades.
const LIGHT: [f32; 4] = [-0.3, -0.55, 1.0, 0.0];

const FLAG_FRONT_MARKER: u32 = 1;
const FLAG_EDGES: u32 = 2;
const FLAG_GRID: u32 = 4;

/// What to draw and how big.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The view.
    pub view: View,
    /// Whether to write each object's id over it.
    pub labels: bool,
}

impl Default for RenderOptions {
    /// 448 × 448 (a multiple of Qwen2.5-VL's 28-pixel patch pairs), perspective, no labels.
    fn default() -> Self {
        Self {
            width: 448,
            height: 448,
            view: View::default(),
            labels: false,
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct CameraUniform {
    view_proj: [[f32; 4]; 4],
    light: [f32; 4],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct CoverageUniform {
    width: u32,
    words: u32,
}

/// Per-instance data, matching `InstanceIn` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Instance {
    center: [f32; 3],
    heading: [f32; 2],
    size: [f32; 3],
    color: [f32; 4],
    object: u32,
    flags: u32,
}

impl Instance {
    fn room_part(center: Vec3, size: Vec3, color: [f32; 3], flags: u32) -> Self {
        Self {
            center: center.to_array(),
            heading: [0.0, 1.0],
            size: size.to_array(),
            color: [color[0], color[1], color[2], 1.0],
            object: 0,
            flags,
        }
    }

    fn object(object: &SceneObject, is_box: bool) -> Self {
        let (sin, cos) = object.heading.to_radians().sin_cos();
        let [r, g, b] = object.color;
        Self {
            center: object.center.to_array(),
            heading: [sin, cos],
            size: object.size.to_array(),
            color: [r, g, b, 1.0],
            object: object.index,
            flags: FLAG_FRONT_MARKER | if is_box { FLAG_EDGES } else { 0 },
        }
    }
}

/// Floor slab and walls, outside the room's inner box; walls that would hide the room from the
/// camera are left out.
fn room_instances(scene: &Scene, view: View, eye: Vec3) -> Vec<Instance> {
    let s = scene.size;
    let t = WALL_THICKNESS;
    let mut parts = vec![Instance::room_part(
        Vec3::new(0.5 * s.x, 0.5 * s.y, -0.5 * t),
        Vec3::new(s.x + 2.0 * t, s.y + 2.0 * t, t),
        FLOOR_COLOR,
        FLAG_GRID | FLAG_EDGES,
    )];
    // South, north, west, east; walls overlap at the corners so that no gap shows.
    let walls = [
        (
            Vec3::new(0.5 * s.x, -0.5 * t, 0.5 * s.z),
            Vec3::new(s.x + 2.0 * t, t, s.z),
        ),
        (
            Vec3::new(0.5 * s.x, s.y + 0.5 * t, 0.5 * s.z),
            Vec3::new(s.x + 2.0 * t, t, s.z),
        ),
        (
            Vec3::new(-0.5 * t, 0.5 * s.y, 0.5 * s.z),
            Vec3::new(t, s.y, s.z),
        ),
        (
            Vec3::new(s.x + 0.5 * t, 0.5 * s.y, 0.5 * s.z),
            Vec3::new(t, s.y, s.z),
        ),
    ];
    for (side, (center, size)) in walls.into_iter().enumerate() {
        let hidden = match view {
            View::Perspective(corner) => corner.touches(side),
            // A wall hides the room when the eye is beyond its plane.
            View::Orbit { .. } => match side {
                0 => eye.y < 0.0,
                1 => eye.y > s.y,
                2 => eye.x < 0.0,
                _ => eye.x > s.x,
            },
            View::Top => false,
        };
        if !hidden {
            parts.push(Instance::room_part(center, size, WALL_COLOR, FLAG_EDGES));
        }
    }
    parts
}

struct GpuMesh {
    vertices: wgpu::Buffer,
    indices: wgpu::Buffer,
    index_count: u32,
}

impl GpuMesh {
    fn upload(device: &wgpu::Device, mesh: &MeshData) -> Self {
        use wgpu::util::DeviceExt;
        let vertices = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("mesh vertices"),
            contents: bytemuck::cast_slice(&mesh.vertices),
            usage: wgpu::BufferUsages::VERTEX,
        });
        let indices = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("mesh indices"),
            contents: bytemuck::cast_slice(&mesh.indices),
            usage: wgpu::BufferUsages::INDEX,
        });
        Self {
            vertices,
            indices,
            index_count: mesh.indices.len() as u32,
        }
    }
}

/// Colour, id and depth array textures with one layer per scene, and their readback buffer.
struct Targets {
    width: u32,
    height: u32,
    layers: u32,
    color: wgpu::Texture,
    ids: wgpu::Texture,
    depth: wgpu::Texture,
    views: Vec<[wgpu::TextureView; 3]>,
    staging: wgpu::Buffer,
}

impl Targets {
    fn padded_row(width: u32) -> u32 {
        (width * BYTES_PER_PIXEL).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
    }

    fn layer_bytes(&self) -> u64 {
        u64::from(Self::padded_row(self.width)) * u64::from(self.height)
    }

    fn new(device: &wgpu::Device, width: u32, height: u32, layers: u32) -> Self {
        let texture = |label, format| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: layers,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
                view_formats: &[],
            })
        };
        let color = texture("colour", COLOR_FORMAT);
        let ids = texture("object ids", ID_FORMAT);
        let depth = texture("depth", DEPTH_FORMAT);
        let layer_view = |texture: &wgpu::Texture, layer| {
            texture.create_view(&wgpu::TextureViewDescriptor {
                dimension: Some(wgpu::TextureViewDimension::D2),
                base_array_layer: layer,
                array_layer_count: Some(1),
                ..Default::default()
            })
        };
        let views = (0..layers)
            .map(|layer| {
                [
                    layer_view(&color, layer),
                    layer_view(&ids, layer),
                    layer_view(&depth, layer),
                ]
            })
            .collect();
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: 3 * u64::from(Self::padded_row(width)) * u64::from(height) * u64::from(layers),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Self {
            width,
            height,
            layers,
            color,
            ids,
            depth,
            views,
            staging,
        }
    }
}

/// A buffer that grows (to the next power of two) when a batch needs more room.
struct GrowingBuffer {
    label: &'static str,
    usage: wgpu::BufferUsages,
    buffer: Option<wgpu::Buffer>,
}

impl GrowingBuffer {
    fn new(label: &'static str, usage: wgpu::BufferUsages) -> Self {
        Self {
            label,
            usage,
            buffer: None,
        }
    }

    /// The buffer, reallocated if smaller than `size`; the flag says whether it is new.
    fn ensure(&mut self, device: &wgpu::Device, size: u64) -> (&wgpu::Buffer, bool) {
        let size = size.max(SLOT_ALIGN);
        let fresh = self.buffer.as_ref().is_none_or(|b| b.size() < size);
        if fresh {
            self.buffer = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(self.label),
                size: size.next_power_of_two(),
                usage: self.usage,
                mapped_at_creation: false,
            }));
        }
        (self.buffer.as_ref().expect("allocated above"), fresh)
    }
}

/// Draw ranges of one scene: the room's instances, then objects grouped by mesh.
struct SceneDraws {
    room: Range<u32>,
    objects: Vec<(usize, Range<u32>)>,
}

/// Everything tied to one wgpu device; rebuilt whole when the device is lost.
struct Gpu {
    adapter_info: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    max_texture_size: u32,
    scene_pipeline: wgpu::RenderPipeline,
    coverage_pipeline: wgpu::RenderPipeline,
    camera_layout: wgpu::BindGroupLayout,
    coverage_layout: wgpu::BindGroupLayout,
    /// Slot 0 is the unit box; assets follow in load order.
    meshes: Vec<GpuMesh>,
    mesh_slots: HashMap<PathBuf, usize>,
    targets: Option<Targets>,
    instances: GrowingBuffer,
    cameras: GrowingBuffer,
    camera_group: Option<wgpu::BindGroup>,
    masks: GrowingBuffer,
    mask_staging: GrowingBuffer,
    lost: Arc<AtomicBool>,
    errors: Arc<Mutex<Vec<String>>>,
}

/// Colour, ids and depth of a batch, plus coverage masks when asked for.
pub(crate) struct Drawn {
    pub(crate) frames: Vec<Frame>,
    /// Per scene: `words` u32 per pixel, bit `k − 1` set where object `k` covers the pixel.
    pub(crate) masks: Vec<Vec<u32>>,
    pub(crate) words: u32,
}

impl Gpu {
    fn new(instance: &wgpu::Instance) -> Result<Self, RenderError> {
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| RenderError::NoAdapter(e.to_string()))?;
        let adapter_info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("metaspatial-render"),
            required_features: wgpu::Features::empty(),
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| RenderError::Device {
            adapter: adapter_info.name.clone(),
            reason: e.to_string(),
        })?;
        let lost = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            tracing::warn!("wgpu device lost ({reason:?}): {message}");
            flag.store(true, Ordering::SeqCst);
        });
        // Errors are collected and returned from the call that caused them, never panics.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(error.to_string());
        }));

        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("scene shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shader.wgsl").into()),
        });
        let camera_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("camera"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(
                        std::mem::size_of::<CameraUniform>() as u64
                    ),
                },
                count: None,
            }],
        });
        let coverage_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("coverage"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let vertex_layouts = [
            Some(wgpu::VertexBufferLayout {
                array_stride: std::mem::size_of::<Vertex>() as u64,
                step_mode: wgpu::VertexStepMode::Vertex,
                attributes: &wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3],
            }),
            Some(wgpu::VertexBufferLayout {
                array_stride: std::mem::size_of::<Instance>() as u64,
                step_mode: wgpu::VertexStepMode::Instance,
                attributes: &wgpu::vertex_attr_array![
                    2 => Float32x3, 3 => Float32x2, 4 => Float32x3, 5 => Float32x4,
                    6 => Uint32, 7 => Uint32
                ],
            }),
        ];
        let primitive = wgpu::PrimitiveState {
            topology: wgpu::PrimitiveTopology::TriangleList,
            // Assets may mirror or be open; drawing both sides keeps them whole.
            cull_mode: None,
            ..Default::default()
        };
        let scene_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("scene"),
            bind_group_layouts: &[Some(&camera_layout)],
            immediate_size: 0,
        });
        let scene_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("scene"),
            layout: Some(&scene_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &vertex_layouts,
            },
            primitive,
            depth_stencil: Some(wgpu::DepthStencilState {
                format: DEPTH_FORMAT,
                depth_write_enabled: Some(true),
                depth_compare: Some(wgpu::CompareFunction::Less),
                stencil: wgpu::StencilState::default(),
                bias: wgpu::DepthBiasState::default(),
            }),
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(COLOR_FORMAT.into()), Some(ID_FORMAT.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let coverage_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("coverage"),
                bind_group_layouts: &[Some(&camera_layout), Some(&coverage_layout)],
                immediate_size: 0,
            });
        let coverage_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("coverage"),
            layout: Some(&coverage_pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &vertex_layouts,
            },
            primitive,
            // Every fragment counts, whatever is in front of it.
            depth_stencil: Some(wgpu::DepthStencilState {
                format: DEPTH_FORMAT,
                depth_write_enabled: Some(false),
                depth_compare: Some(wgpu::CompareFunction::Always),
                stencil: wgpu::StencilState::default(),
                bias: wgpu::DepthBiasState::default(),
            }),
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_coverage"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[],
            }),
            multiview_mask: None,
            cache: None,
        });
        let unit_box = GpuMesh::upload(&device, &MeshData::unit_box());
        let max_texture_size = device.limits().max_texture_dimension_2d;
        let gpu = Self {
            adapter_info,
            device,
            queue,
            max_texture_size,
            scene_pipeline,
            coverage_pipeline,
            camera_layout,
            coverage_layout,
            meshes: vec![unit_box],
            mesh_slots: HashMap::new(),
            targets: None,
            instances: GrowingBuffer::new(
                "instances",
                wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            ),
            cameras: GrowingBuffer::new(
                "cameras",
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            camera_group: None,
            masks: GrowingBuffer::new(
                "coverage masks",
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            ),
            mask_staging: GrowingBuffer::new(
                "coverage readback",
                wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            ),
            lost,
            errors,
        };
        gpu.check()?;
        Ok(gpu)
    }

    /// Turns a lost device or collected wgpu errors into an error.
    fn check(&self) -> Result<(), RenderError> {
        let errors = std::mem::take(
            &mut *self
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if self.lost.load(Ordering::SeqCst) {
            return Err(RenderError::DeviceLost(errors.join("; ")));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RenderError::Gpu(errors.join("; ")))
        }
    }

    fn mesh_slot(&mut self, asset: Option<&Path>) -> Result<usize, RenderError> {
        let Some(path) = asset else { return Ok(0) };
        if let Some(&slot) = self.mesh_slots.get(path) {
            return Ok(slot);
        }
        let mesh = MeshData::load_gltf(path)?;
        self.meshes.push(GpuMesh::upload(&self.device, &mesh));
        let slot = self.meshes.len() - 1;
        self.mesh_slots.insert(path.to_path_buf(), slot);
        Ok(slot)
    }

    fn ensure_targets(&mut self, width: u32, height: u32, layers: u32) {
        let fits = self
            .targets
            .as_ref()
            .is_some_and(|t| t.width == width && t.height == height && t.layers >= layers);
        if !fits {
            // Grow in powers of two so that varying batch sizes settle quickly.
            let layers = layers.next_power_of_two().min(MAX_BATCH as u32);
            self.targets = Some(Targets::new(&self.device, width, height, layers));
        }
    }

    /// Draws up to `MAX_BATCH` scenes in one submission and reads them back.
    fn draw(
        &mut self,
        scenes: &[&Scene],
        options: &RenderOptions,
        coverage: bool,
    ) -> Result<Drawn, RenderError> {
        debug_assert!(!scenes.is_empty() && scenes.len() <= MAX_BATCH);
        self.check()?;
        let (width, height) = (options.width, options.height);
        let n = scenes.len() as u32;
        let aspect = width as f32 / height as f32;

        // Instances for every scene, grouped by mesh, and one camera per scene.
        let mut instances = Vec::new();
        let mut draws = Vec::with_capacity(scenes.len());
        let mut cameras = Vec::with_capacity(scenes.len());
        let mut camera_bytes = vec![0_u8; scenes.len() * SLOT_ALIGN as usize];
        for (s, scene) in scenes.iter().enumerate() {
            let camera = Camera::new(options.view, scene.size, aspect);
            let uniform = CameraUniform {
                view_proj: camera.view_proj.to_cols_array_2d(),
                light: LIGHT,
            };
            let slot = s * SLOT_ALIGN as usize;
            camera_bytes[slot..slot + std::mem::size_of::<CameraUniform>()]
                .copy_from_slice(bytemuck::bytes_of(&uniform));
            cameras.push(camera);

            let start = instances.len() as u32;
            instances.extend(room_instances(scene, options.view, camera.eye));
            let room = start..instances.len() as u32;
            let mut objects = Vec::with_capacity(scene.objects.len());
            for object in &scene.objects {
                let slot =
                    self.mesh_slot(object.asset.as_deref())
                        .map_err(|e| RenderError::Object {
                            room: scene.room.clone(),
                            object: object.id.clone(),
                            reason: e.to_string(),
                        })?;
                objects.push((slot, Instance::object(object, slot == 0)));
            }
            objects.sort_by_key(|(slot, _)| *slot);
            let mut ranges: Vec<(usize, Range<u32>)> = Vec::new();
            for (slot, instance) in objects {
                let index = instances.len() as u32;
                instances.push(instance);
                match ranges.last_mut() {
                    Some((last, range)) if *last == slot => range.end = index + 1,
                    _ => ranges.push((slot, index..index + 1)),
                }
            }
            draws.push(SceneDraws {
                room,
                objects: ranges,
            });
        }

        self.ensure_targets(width, height, n);
        let (instance_buffer, _) = self.instances.ensure(
            &self.device,
            std::mem::size_of_val(instances.as_slice()) as u64,
        );
        self.queue
            .write_buffer(instance_buffer, 0, bytemuck::cast_slice(&instances));
        let (camera_buffer, fresh) = self.cameras.ensure(&self.device, camera_bytes.len() as u64);
        self.queue.write_buffer(camera_buffer, 0, &camera_bytes);
        if fresh || self.camera_group.is_none() {
            self.camera_group =
                Some(
                    self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("cameras"),
                        layout: &self.camera_layout,
                        entries: &[wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: camera_buffer,
                                offset: 0,
                                size: wgpu::BufferSize::new(
                                    std::mem::size_of::<CameraUniform>() as u64
                                ),
                            }),
                        }],
                    }),
                );
        }

        // Coverage masks: `words` u32 per pixel, one slot per scene.
        let words = scenes
            .iter()
            .map(|s| s.max_index())
            .max()
            .unwrap_or(0)
            .div_ceil(32)
            .max(1);
        let mask_bytes = u64::from(width) * u64::from(height) * u64::from(words) * 4;
        let mask_stride = mask_bytes.next_multiple_of(SLOT_ALIGN);
        let coverage_group = if coverage {
            let (masks, _) = self.masks.ensure(&self.device, mask_stride * u64::from(n));
            self.mask_staging
                .ensure(&self.device, mask_stride * u64::from(n));
            let params = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("coverage parameters"),
                size: SLOT_ALIGN,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.queue.write_buffer(
                &params,
                0,
                bytemuck::bytes_of(&CoverageUniform { width, words }),
            );
            Some(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("coverage"),
                layout: &self.coverage_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: masks,
                            offset: 0,
                            size: wgpu::BufferSize::new(mask_bytes),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: params.as_entire_binding(),
                    },
                ],
            }))
        } else {
            None
        };

        let targets = self.targets.as_ref().expect("ensured above");
        let camera_group = self.camera_group.as_ref().expect("created above");
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("render batch"),
            });
        if coverage {
            let masks = self.masks.buffer.as_ref().expect("ensured above");
            encoder.clear_buffer(masks, 0, Some(mask_stride * u64::from(n)));
        }
        for (s, scene_draws) in draws.iter().enumerate() {
            let [color_view, id_view, depth_view] = &targets.views[s];
            let camera_offset = (s as u64 * SLOT_ALIGN) as u32;
            {
                let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("scene"),
                    color_attachments: &[
                        Some(wgpu::RenderPassColorAttachment {
                            view: color_view,
                            depth_slice: None,
                            resolve_target: None,
                            ops: wgpu::Operations {
                                load: wgpu::LoadOp::Clear(BACKGROUND),
                                store: wgpu::StoreOp::Store,
                            },
                        }),
                        Some(wgpu::RenderPassColorAttachment {
                            view: id_view,
                            depth_slice: None,
                            resolve_target: None,
                            ops: wgpu::Operations {
                                load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                                store: wgpu::StoreOp::Store,
                            },
                        }),
                    ],
                    depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                        view: depth_view,
                        depth_ops: Some(wgpu::Operations {
                            load: wgpu::LoadOp::Clear(1.0),
                            store: wgpu::StoreOp::Store,
                        }),
                        stencil_ops: None,
                    }),
                    timestamp_writes: None,
                    occlusion_query_set: None,
                    multiview_mask: None,
                });
                pass.set_pipeline(&self.scene_pipeline);
                pass.set_bind_group(0, camera_group, &[camera_offset]);
                pass.set_vertex_buffer(1, instance_buffer_slice(&self.instances));
                let room = std::iter::once((0, scene_draws.room.clone()));
                for (slot, range) in room.chain(scene_draws.objects.iter().cloned()) {
                    self.draw_mesh(&mut pass, slot, range);
                }
            }
            if let Some(group) = &coverage_group {
                let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("coverage"),
                    color_attachments: &[],
                    depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                        view: depth_view,
                        depth_ops: Some(wgpu::Operations {
                            load: wgpu::LoadOp::Load,
                            store: wgpu::StoreOp::Store,
                        }),
                        stencil_ops: None,
                    }),
                    timestamp_writes: None,
                    occlusion_query_set: None,
                    multiview_mask: None,
                });
                pass.set_pipeline(&self.coverage_pipeline);
                pass.set_bind_group(0, camera_group, &[camera_offset]);
                pass.set_bind_group(1, group, &[(s as u64 * mask_stride) as u32]);
                pass.set_vertex_buffer(1, instance_buffer_slice(&self.instances));
                for (slot, range) in scene_draws.objects.iter().cloned() {
                    self.draw_mesh(&mut pass, slot, range);
                }
            }
        }

        let padded_row = Targets::padded_row(width);
        let layer_bytes = targets.layer_bytes();
        let output_bytes = layer_bytes * u64::from(n);
        for (k, (texture, aspect)) in [
            (&targets.color, wgpu::TextureAspect::All),
            (&targets.ids, wgpu::TextureAspect::All),
            (&targets.depth, wgpu::TextureAspect::DepthOnly),
        ]
        .into_iter()
        .enumerate()
        {
            encoder.copy_texture_to_buffer(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect,
                },
                wgpu::TexelCopyBufferInfo {
                    buffer: &targets.staging,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: k as u64 * output_bytes,
                        bytes_per_row: Some(padded_row),
                        rows_per_image: Some(height),
                    },
                },
                wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: n,
                },
            );
        }
        if coverage {
            encoder.copy_buffer_to_buffer(
                self.masks.buffer.as_ref().expect("ensured above"),
                0,
                self.mask_staging.buffer.as_ref().expect("ensured above"),
                0,
                mask_stride * u64::from(n),
            );
        }
        self.queue.submit([encoder.finish()]);

        let image_bytes = read_back(self, &targets.staging, 3 * output_bytes)?;
        let mask_words = if coverage {
            let staging = self.mask_staging.buffer.as_ref().expect("ensured above");
            read_back(self, staging, mask_stride * u64::from(n))?
        } else {
            Vec::new()
        };
        self.check()?;

        let pixels = (width * height) as usize;
        let row_bytes = (width * BYTES_PER_PIXEL) as usize;
        let unpad = |base: u64| -> Vec<u8> {
            let mut out = Vec::with_capacity(pixels * 4);
            for row in 0..height as usize {
                let start = base as usize + row * padded_row as usize;
                out.extend_from_slice(&image_bytes[start..start + row_bytes]);
            }
            out
        };
        let mut frames = Vec::with_capacity(scenes.len());
        let mut masks = Vec::new();
        for (s, (scene, camera)) in scenes.iter().zip(cameras).enumerate() {
            let layer = s as u64 * layer_bytes;
            let mut color = unpad(layer);
            let ids = words_of(&unpad(output_bytes + layer));
            let depth = words_of(&unpad(2 * output_bytes + layer))
                .into_iter()
                .map(|bits| camera.linear_depth(f32::from_bits(bits)))
                .collect();
            if options.labels {
                let labels: Vec<(&str, glam::Vec2)> = scene
                    .objects
                    .iter()
                    .filter_map(|object| {
                        let top = object.center + Vec3::new(0.0, 0.0, 0.5 * object.size.z);
                        let anchor = camera.project(top, width, height)?;
                        let inside = anchor.x >= 0.0
                            && anchor.y >= 0.0
                            && anchor.x < width as f32
                            && anchor.y < height as f32;
                        inside.then_some((object.id.as_str(), anchor))
                    })
                    .collect();
                draw_labels(&mut color, width, height, &labels);
            }
            frames.push(Frame {
                width,
                height,
                color,
                ids,
                depth,
                camera,
            });
            if coverage {
                let start = (s as u64 * mask_stride) as usize;
                masks.push(words_of(&mask_words[start..start + mask_bytes as usize]));
            }
        }
        Ok(Drawn {
            frames,
            masks,
            words,
        })
    }

    fn draw_mesh(&self, pass: &mut wgpu::RenderPass<'_>, slot: usize, instances: Range<u32>) {
        let mesh = &self.meshes[slot];
        pass.set_vertex_buffer(0, mesh.vertices.slice(..));
        pass.set_index_buffer(mesh.indices.slice(..), wgpu::IndexFormat::Uint32);
        pass.draw_indexed(0..mesh.index_count, 0, instances);
    }
}

fn instance_buffer_slice(buffer: &GrowingBuffer) -> wgpu::BufferSlice<'_> {
    buffer
        .buffer
        .as_ref()
        .expect("allocated before drawing")
        .slice(..)
}

/// Little-endian u32 words of a byte slice.
fn words_of(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect()
}

/// Maps the first `size` bytes of a readback buffer, waits for the GPU and copies them out.
fn read_back(gpu: &Gpu, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, RenderError> {
    let slice = buffer.slice(..size);
    let (sender, receiver) = mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        // The receiver outlives the poll below; a failed send only means it gave up.
        let _ = sender.send(result);
    });
    let lost = |reason: String| {
        if gpu.lost.load(Ordering::SeqCst) {
            RenderError::DeviceLost(reason)
        } else {
            RenderError::Gpu(reason)
        }
    };
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| lost(e.to_string()))?;
    receiver
        .recv()
        .map_err(|e| lost(format!("readback never completed: {e}")))?
        .map_err(|e| lost(format!("readback failed: {e}")))?;
    let bytes = slice
        .get_mapped_range()
        .map_err(|e| lost(format!("readback mapping: {e}")))?
        .to_vec();
    buffer.unmap();
    Ok(bytes)
}

/// Headless renderer of rooms and layouts; owns the wgpu device.
///
/// Build one per thread that renders and keep it: pipelines, meshes and render targets are
/// created once and reused.
pub struct Renderer {
    instance: wgpu::Instance,
    gpu: Gpu,
}

impl Renderer {
    /// Opens the best adapter (a GPU if there is one, else software Vulkan) and builds the
    /// pipelines.
    pub fn new() -> Result<Self, RenderError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let gpu = Gpu::new(&instance)?;
        tracing::debug!(
            "rendering on {} ({:?}, {:?})",
            gpu.adapter_info.name,
            gpu.adapter_info.device_type,
            gpu.adapter_info.backend
        );
        Ok(Self { instance, gpu })
    }

    /// The adapter in use.
    #[must_use]
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.gpu.adapter_info
    }

    /// Renders one scene.
    pub fn render(&mut self, scene: &Scene, options: &RenderOptions) -> Result<Frame, RenderError> {
        let mut frames = self.render_batch(std::slice::from_ref(scene), options)?;
        Ok(frames.pop().expect("one frame per scene"))
    }

    /// Renders many scenes with the same options, up to 64 per GPU submission.
    pub fn render_batch(
        &mut self,
        scenes: &[Scene],
        options: &RenderOptions,
    ) -> Result<Vec<Frame>, RenderError> {
        let refs: Vec<&Scene> = scenes.iter().collect();
        Ok(self
            .draw_batches(&refs, options, false)?
            .into_iter()
            .flat_map(|d| d.frames)
            .collect())
    }

    /// Draws scenes in chunks of at most `MAX_BATCH`, recreating a lost device once.
    pub(crate) fn draw_batches(
        &mut self,
        scenes: &[&Scene],
        options: &RenderOptions,
        coverage: bool,
    ) -> Result<Vec<Drawn>, RenderError> {
        let max = self.gpu.max_texture_size;
        if options.width == 0 || options.height == 0 || options.width > max || options.height > max
        {
            return Err(RenderError::Request(format!(
                "image size {}×{} must be between 1 and {max} pixels per side",
                options.width, options.height
            )));
        }
        let mut drawn = Vec::new();
        for chunk in scenes.chunks(MAX_BATCH) {
            if self.gpu.lost.load(Ordering::SeqCst) {
                self.recreate()?;
            }
            let result = match self.gpu.draw(chunk, options, coverage) {
                Err(RenderError::DeviceLost(reason)) => {
                    tracing::warn!("wgpu device lost ({reason}); recreating it and retrying once");
                    self.recreate()?;
                    self.gpu.draw(chunk, options, coverage)
                }
                other => other,
            };
            drawn.push(result?);
        }
        Ok(drawn)
    }

    fn recreate(&mut self) -> Result<(), RenderError> {
        self.gpu = Gpu::new(&self.instance)?;
        Ok(())
    }

    /// Destroys the device as a driver reset would; the next render recreates it. Lets callers
    /// and tests exercise the recovery path.
    pub fn lose_device(&self) {
        self.gpu.device.destroy();
    }
}
