//! Meshes in the unit cube `[-0.5, 0.5]³`: the built-in box and GLB/glTF assets scaled to fit.
//!
//! Our object frame has x to the object's right, y to its front and z up. glTF assets face +Z
//! with +Y up and −X to their right, so a glTF point `(x, y, z)` becomes `(−x, z, y)` (a proper
//! rotation, so triangle winding is kept).

use std::path::Path;

use bytemuck::{Pod, Zeroable};
use glam::{Mat3, Mat4, Vec3};

use crate::RenderError;

/// One mesh vertex as the GPU reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Vertex {
    /// Position in the unit cube.
    pub position: [f32; 3],
    /// Unit normal in the same frame.
    pub normal: [f32; 3],
}

/// An indexed triangle mesh in the unit cube.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeshData {
    /// Vertices.
    pub vertices: Vec<Vertex>,
    /// Triangle list indices into `vertices`.
    pub indices: Vec<u32>,
}

impl MeshData {
    /// The unit box with one flat-shaded quad per face.
    #[must_use]
    pub fn unit_box() -> Self {
        let mut mesh = Self::default();
        for axis in 0..3 {
            for sign in [-1.0_f32, 1.0] {
                let mut normal = Vec3::ZERO;
                normal[axis] = sign;
                // Two in-face axes ordered so that (u, v, normal) is right-handed.
                let u = Vec3::from_array(std::array::from_fn(|i| {
                    if i == (axis + 1) % 3 { 1.0 } else { 0.0 }
                }));
                let v = normal.cross(u);
                let base = mesh.vertices.len() as u32;
                for (a, b) in [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)] {
                    let p = 0.5 * (normal + a * u + b * v);
                    mesh.vertices.push(Vertex {
                        position: p.to_array(),
                        normal: normal.to_array(),
                    });
                }
                mesh.indices
                    .extend([base, base + 1, base + 2, base, base + 2, base + 3]);
            }
        }
        mesh
    }

    /// Loads a GLB or glTF file, converts it to our axes and scales it to fill the unit cube.
    ///
    /// Buffers may live in the GLB's binary chunk or in files next to a `.gltf`; primitives that
    /// are not triangle lists are skipped. Missing normals are computed per face.
    pub fn load_gltf(path: &Path) -> Result<Self, RenderError> {
        let error = |reason: String| RenderError::Asset {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let document = gltf::Gltf::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        let mut buffers = Vec::new();
        for buffer in document.buffers() {
            let data = match buffer.source() {
                gltf::buffer::Source::Bin => document
                    .blob
                    .clone()
                    .ok_or_else(|| error("buffer refers to a missing GLB binary chunk".into()))?,
                gltf::buffer::Source::Uri(uri) if uri.starts_with("data:") => {
                    return Err(error(
                        "embedded data-URI buffers are not supported; convert to GLB".into(),
                    ));
                }
                gltf::buffer::Source::Uri(uri) => {
                    let file = path.parent().unwrap_or(Path::new(".")).join(uri);
                    std::fs::read(&file)
                        .map_err(|e| error(format!("buffer {}: {e}", file.display())))?
                }
            };
            if data.len() < buffer.length() {
                return Err(error(format!(
                    "buffer {} holds {} bytes, {} declared",
                    buffer.index(),
                    data.len(),
                    buffer.length()
                )));
            }
            buffers.push(data);
        }
        // glTF (x, y, z) → ours (−x, z, y).
        let axes = Mat4::from_cols(
            glam::Vec4::new(-1.0, 0.0, 0.0, 0.0),
            glam::Vec4::new(0.0, 0.0, 1.0, 0.0),
            glam::Vec4::new(0.0, 1.0, 0.0, 0.0),
            glam::Vec4::W,
        );
        let scene = document
            .default_scene()
            .or_else(|| document.scenes().next())
            .ok_or_else(|| error("no scene".into()))?;
        let mut mesh = Self::default();
        let mut stack: Vec<(gltf::Node, Mat4)> = scene.nodes().map(|n| (n, axes)).collect();
        while let Some((node, parent)) = stack.pop() {
            let transform = parent * Mat4::from_cols_array_2d(&node.transform().matrix());
            if let Some(node_mesh) = node.mesh() {
                for primitive in node_mesh.primitives() {
                    if primitive.mode() == gltf::mesh::Mode::Triangles {
                        mesh.append_primitive(&primitive, &buffers, transform)
                            .map_err(|reason| {
                                error(format!("mesh {}: {reason}", node_mesh.index()))
                            })?;
                    }
                }
            }
            stack.extend(node.children().map(|child| (child, transform)));
        }
        if mesh.indices.is_empty() {
            return Err(error("no triangles".into()));
        }
        mesh.fit_unit_cube();
        Ok(mesh)
    }

    fn append_primitive(
        &mut self,
        primitive: &gltf::Primitive,
        buffers: &[Vec<u8>],
        transform: Mat4,
    ) -> Result<(), String> {
        let reader = primitive.reader(|b| buffers.get(b.index()).map(Vec::as_slice));
        let positions: Vec<Vec3> = reader
            .read_positions()
            .ok_or("primitive without positions")?
            .map(|p| transform.transform_point3(Vec3::from_array(p)))
            .collect();
        let count = positions.len() as u32;
        let indices: Vec<u32> = match reader.read_indices() {
            Some(indices) => indices.into_u32().collect(),
            None => (0..count).collect(),
        };
        if let Some(bad) = indices.iter().find(|&&i| i >= count) {
            return Err(format!("index {bad} out of range for {count} vertices"));
        }
        let base = self.vertices.len() as u32;
        // A mirroring node transform flips triangle winding; normals follow the determinant.
        let normal_matrix = Mat3::from_mat4(transform).inverse().transpose();
        if let Some(normals) = reader.read_normals() {
            for (p, n) in positions.iter().zip(normals) {
                self.vertices.push(Vertex {
                    position: p.to_array(),
                    normal: (normal_matrix * Vec3::from_array(n))
                        .normalize_or(Vec3::Z)
                        .to_array(),
                });
            }
            self.indices.extend(indices.iter().map(|i| base + i));
        } else {
            // Flat shading: one vertex per triangle corner.
            for triangle in indices.chunks_exact(3) {
                let [a, b, c] = [0, 1, 2].map(|k| positions[triangle[k] as usize]);
                let normal = (b - a).cross(c - a).normalize_or(Vec3::Z).to_array();
                for p in [a, b, c] {
                    self.indices.push(self.vertices.len() as u32);
                    self.vertices.push(Vertex {
                        position: p.to_array(),
                        normal,
                    });
                }
            }
        }
        Ok(())
    }

    /// Scales and moves the mesh so that its bounding box is exactly the unit cube.
    fn fit_unit_cube(&mut self) {
        let (min, max) = self.vertices.iter().fold(
            (Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY)),
            |(lo, hi), v| {
                let p = Vec3::from_array(v.position);
                (lo.min(p), hi.max(p))
            },
        );
        let extent = max - min;
        // A flat asset stays flat along its thin axis instead of dividing by zero.
        let scale = Vec3::select(extent.cmpgt(Vec3::splat(1e-9)), extent.recip(), Vec3::ONE);
        let centre = 0.5 * (min + max);
        for v in &mut self.vertices {
            v.position = ((Vec3::from_array(v.position) - centre) * scale).to_array();
            // Non-uniform scaling bends normals by the inverse scale.
            v.normal = (Vec3::from_array(v.normal) / scale)
                .normalize_or(Vec3::Z)
                .to_array();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_box_faces_point_outwards() {
        let mesh = MeshData::unit_box();
        assert_eq!((mesh.vertices.len(), mesh.indices.len()), (24, 36));
        for triangle in mesh.indices.chunks_exact(3) {
            let [a, b, c] =
                [0, 1, 2].map(|k| Vec3::from_array(mesh.vertices[triangle[k] as usize].position));
            let normal = Vec3::from_array(mesh.vertices[triangle[0] as usize].normal);
            // Counter-clockwise seen from outside.
            assert!((b - a).cross(c - a).dot(normal) > 0.0);
            assert!((a + b + c).dot(normal) > 0.0);
        }
    }
}
