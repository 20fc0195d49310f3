//! Views and their cameras: a perspective view from a room corner and a top-down plan.

use glam::{Mat4, Vec2, Vec3, Vec4Swizzles};

use crate::scene::WALL_THICKNESS;

/// A corner of the room, named by its two walls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Corner {
    /// `(0, 0)`.
    #[default]
    SouthWest,
    /// `(L, 0)`.
    SouthEast,
    /// `(L, W)`.
    NorthEast,
    /// `(0, W)`.
    NorthWest,
}

impl Corner {
    /// The corner's horizontal position in a room of length `l` and width `w`.
    fn point(self, l: f32, w: f32) -> Vec2 {
        match self {
            Self::SouthWest => Vec2::new(0.0, 0.0),
            Self::SouthEast => Vec2::new(l, 0.0),
            Self::NorthEast => Vec2::new(l, w),
            Self::NorthWest => Vec2::new(0.0, w),
        }
    }

    /// Whether the wall on side `wall` (0 south, 1 north, 2 west, 3 east) touches this corner.
    pub(crate) fn touches(self, wall: usize) -> bool {
        matches!(
            (self, wall),
            (Self::SouthWest | Self::SouthEast, 0)
                | (Self::NorthEast | Self::NorthWest, 1)
                | (Self::SouthWest | Self::NorthWest, 2)
                | (Self::SouthEast | Self::NorthEast, 3)
        )
    }
}

/// What the image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Perspective from above head height behind a corner, looking at the room's centre; the
    /// two walls meeting at that corner are left out so they do not hide the room.
    Perspective(Corner),
    /// Orthographic plan seen from above, north at the top of the image, no ceiling.
    Top,
}

impl Default for View {
    fn default() -> Self {
        Self::Perspective(Corner::default())
    }
}

/// Vertical field of view of the perspective camera.
const FOV_Y_DEGREES: f32 = 50.0;
/// Angle of the perspective camera's line of sight below the horizon.
const ELEVATION_DEGREES: f32 = 38.0;
/// Room corners are fitted inside this fraction of the image half-extent.
const FRAME_FILL: f32 = 0.94;

/// A camera for one view of one room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// World to clip space.
    pub view_proj: Mat4,
    /// Near plane distance (m).
    pub near: f32,
    /// Far plane distance (m).
    pub far: f32,
    /// Whether the projection is orthographic (depth is then linear).
    pub orthographic: bool,
    /// Position of the eye (m).
    pub eye: Vec3,
}

impl Camera {
    /// The camera of `view` for a room of inner size `room` drawn at `aspect` (width / height).
    #[must_use]
    pub fn new(view: View, room: Vec3, aspect: f32) -> Self {
        match view {
            View::Top => Self::top(room, aspect),
            View::Perspective(corner) => Self::perspective(corner, room, aspect),
        }
    }

    fn top(room: Vec3, aspect: f32) -> Self {
        let margin = WALL_THICKNESS + 0.1;
        let mut half = Vec2::new(0.5 * room.x + margin, 0.5 * room.y + margin);
        if half.x / half.y < aspect {
            half.x = half.y * aspect;
        } else {
            half.y = half.x / aspect;
        }
        let target = Vec3::new(0.5 * room.x, 0.5 * room.y, 0.0);
        let eye = target + Vec3::new(0.0, 0.0, room.z + 5.0);
        let view = Mat4::look_at_rh(eye, target, Vec3::Y);
        let (near, far) = (1.0, room.z + 7.0);
        let proj = Mat4::orthographic_rh(-half.x, half.x, -half.y, half.y, near, far);
        Self {
            view_proj: proj * view,
            near,
            far,
            orthographic: true,
            eye,
        }
    }

    fn perspective(corner: Corner, room: Vec3, aspect: f32) -> Self {
        let centre = Vec2::new(0.5 * room.x, 0.5 * room.y);
        let outward = (corner.point(room.x, room.y) - centre).normalize();
        let target = Vec3::new(centre.x, centre.y, 0.3 * room.z);
        let (sin_e, cos_e) = ELEVATION_DEGREES.to_radians().sin_cos();
        let direction = Vec3::new(outward.x * cos_e, outward.y * cos_e, sin_e);
        let near = 0.05;
        let corners: Vec<Vec3> = (0..8)
            .map(|i| {
                Vec3::new(
                    if i & 1 == 0 { 0.0 } else { room.x },
                    if i & 2 == 0 { 0.0 } else { room.y },
                    if i & 4 == 0 { 0.0 } else { room.z },
                )
            })
            .collect();
        let build = |distance: f32| {
            let eye = target + direction * distance;
            let far = distance + 2.0 * room.length() + 1.0;
            let view = Mat4::look_at_rh(eye, target, Vec3::Z);
            let proj = Mat4::perspective_rh(FOV_Y_DEGREES.to_radians(), aspect, near, far);
            Self {
                view_proj: proj * view,
                near,
                far,
                orthographic: false,
                eye,
            }
        };
        let fits = |camera: &Self| {
            corners.iter().all(|&p| {
                let clip = camera.view_proj * p.extend(1.0);
                clip.w > near && (clip.xy() / clip.w).abs().max_element() <= FRAME_FILL
            })
        };
        // The framing tightens monotonically as the eye moves back, so bisect the distance.
        let (mut lo, mut hi) = (0.1_f32, 1.0 + 20.0 * room.length());
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if fits(&build(mid)) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        build(hi)
    }

    /// Pixel coordinates (x right, y down) of a world point, or `None` behind the camera.
    #[must_use]
    pub fn project(&self, point: Vec3, width: u32, height: u32) -> Option<Vec2> {
        let clip = self.view_proj * point.extend(1.0);
        if clip.w <= 0.0 {
            return None;
        }
        let ndc = clip.xy() / clip.w;
        Some(Vec2::new(
            (0.5 * ndc.x + 0.5) * width as f32,
            (0.5 - 0.5 * ndc.y) * height as f32,
        ))
    }

    /// The floor point `(x, y)` seen at the centre of pixel `(px, py)` in a top view.
    #[must_use]
    pub fn pixel_to_floor(&self, px: u32, py: u32, width: u32, height: u32) -> Vec2 {
        let ndc = Vec2::new(
            (px as f32 + 0.5) / width as f32 * 2.0 - 1.0,
            1.0 - (py as f32 + 0.5) / height as f32 * 2.0,
        );
        let world = self.view_proj.inverse() * ndc.extend(0.0).extend(1.0);
        world.xy() / world.w
    }

    /// The floor rectangle a top view shows edge to edge, `[x_min, y_min, x_max, y_max]` in
    /// metres (x to the right of the image, y up it); `None` for a perspective view. A viewer
    /// maps floor points to pixels with it without knowing how the camera framed the room.
    #[must_use]
    pub fn floor_bounds(&self) -> Option<[f32; 4]> {
        if !self.orthographic {
            return None;
        }
        let inverse = self.view_proj.inverse();
        let corner = |x: f32, y: f32| {
            let world = inverse * Vec2::new(x, y).extend(0.0).extend(1.0);
            world.xy() / world.w
        };
        let (low, high) = (corner(-1.0, -1.0), corner(1.0, 1.0));
        Some([low.x, low.y, high.x, high.y])
    }

    /// Distance along the view axis (m) for a depth-buffer value; infinity for the clear value.
    #[must_use]
    pub fn linear_depth(&self, depth: f32) -> f32 {
        if depth >= 1.0 {
            f32::INFINITY
        } else if self.orthographic {
            self.near + depth * (self.far - self.near)
        } else {
            self.near * self.far / (self.far - depth * (self.far - self.near))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_bounds_are_the_pixels_edges_on_the_floor() {
        let camera = Camera::new(View::Top, Vec3::new(4.0, 3.0, 2.5), 1.0);
        let [x0, y0, x1, y1] = camera.floor_bounds().expect("a top view");
        // Square image, room longer than wide: x spans the room plus margins, y the same span.
        assert!(x0 < 0.0 && x1 > 4.0, "{x0}..{x1}");
        assert!((x1 - x0 - (y1 - y0)).abs() < 1e-4);
        assert!((f32::midpoint(x0, x1) - 2.0).abs() < 1e-4);
        assert!((f32::midpoint(y0, y1) - 1.5).abs() < 1e-4);
        // The top-left pixel's centre lies half a pixel inside the north-west corner.
        let p = camera.pixel_to_floor(0, 0, 100, 100);
        assert!((p.x - (x0 + (x1 - x0) / 200.0)).abs() < 1e-4);
        assert!((p.y - (y1 - (y1 - y0) / 200.0)).abs() < 1e-4);
        let perspective = Camera::new(
            View::Perspective(Corner::SouthWest),
            Vec3::new(4.0, 3.0, 2.5),
            1.0,
        );
        assert_eq!(perspective.floor_bounds(), None);
    }

    #[test]
    fn top_view_puts_north_up_and_east_right() {
        let camera = Camera::new(View::Top, Vec3::new(4.0, 3.0, 2.5), 1.0);
        let south_west = camera.project(Vec3::new(0.0, 0.0, 0.0), 448, 448).unwrap();
        let north_east = camera.project(Vec3::new(4.0, 3.0, 0.0), 448, 448).unwrap();
        assert!(north_east.x > south_west.x && north_east.y < south_west.y);
        let back = camera.pixel_to_floor(224, 224, 448, 448);
        assert!((back - Vec2::new(2.0, 1.5)).length() < 0.02, "{back}");
    }

    #[test]
    fn perspective_frames_the_whole_room() {
        let room = Vec3::new(5.0, 4.0, 2.8);
        let camera = Camera::new(View::Perspective(Corner::SouthWest), room, 1.0);
        assert!(camera.eye.x < 0.0 && camera.eye.y < 0.0 && camera.eye.z > 2.0);
        for p in [
            Vec3::ZERO,
            room,
            Vec3::new(room.x, 0.0, 0.0),
            Vec3::new(0.0, room.y, room.z),
        ] {
            let pixel = camera.project(p, 448, 448).unwrap();
            assert!(
                pixel.min_element() >= 0.0 && pixel.max_element() <= 448.0,
                "{p} → {pixel}"
            );
        }
    }

    #[test]
    fn linear_depth_inverts_the_projection() {
        let camera = Camera::new(View::default(), Vec3::new(4.0, 4.0, 2.5), 1.0);
        let point = Vec3::new(2.0, 2.0, 0.0);
        let clip = camera.view_proj * point.extend(1.0);
        let distance = camera.linear_depth(clip.z / clip.w);
        let view_axis = (Vec3::new(2.0, 2.0, 0.75) - camera.eye).normalize();
        let expected = (point - camera.eye).dot(view_axis);
        assert!(
            (distance - expected).abs() < 1e-3,
            "{distance} vs {expected}"
        );
    }
}
