//! Views and their cameras: a perspective view from a room corner, an orbit view from any
//! direction, and a top-down plan; pixels with their depth map back to room coordinates.

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
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum View {
    /// Perspective from above head height behind a corner, looking at the room's centre; the
    /// two walls meeting at that corner are left out so they do not hide the room.
    Perspective(Corner),
    /// Perspective from any direction, framed as the corner views are; the walls between the
    /// eye and the room are left out.
    Orbit {
        /// Direction of the eye from the room's centre, degrees counter-clockwise from east
        /// (+x): 0 east, 90 north, 225 the south-west corner's side.
        azimuth: f32,
        /// Angle of the line of sight below the horizon, degrees in `(0, 90]`.
        elevation: f32,
        /// Distance as a multiple of the one that just fits the room in the frame (1 = as
        /// close as the corner views).
        distance: f32,
    },
    /// Orthographic plan seen from above, north at the top of the image, no ceiling.
    Top,
}

impl View {
    /// A short name for file names, records and prompts: `perspective` (the south-west corner's,
    /// the one runs use) or `perspective-ne` (the others), `top`, or `orbit-a225-e38` (azimuth
    /// and elevation rounded to whole degrees, with `-d1.5` when the distance is not 1).
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Perspective(Corner::SouthWest) => "perspective".to_owned(),
            Self::Perspective(Corner::SouthEast) => "perspective-se".to_owned(),
            Self::Perspective(Corner::NorthEast) => "perspective-ne".to_owned(),
            Self::Perspective(Corner::NorthWest) => "perspective-nw".to_owned(),
            Self::Top => "top".to_owned(),
            Self::Orbit {
                azimuth,
                elevation,
                distance,
            } => {
                let name = format!("orbit-a{azimuth:.0}-e{elevation:.0}");
                if (distance - 1.0).abs() > 1e-6 {
                    format!("{name}-d{distance}")
                } else {
                    name
                }
            }
        }
    }
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
    /// World to eye space (right-handed, looking down −z), the first factor of `view_proj`.
    pub view: Mat4,
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
            View::Perspective(corner) => {
                let centre = Vec2::new(0.5 * room.x, 0.5 * room.y);
                let outward = (corner.point(room.x, room.y) - centre).normalize();
                Self::perspective(outward, ELEVATION_DEGREES, 1.0, room, aspect)
            }
            View::Orbit {
                azimuth,
                elevation,
                distance,
            } => {
                let (sin_a, cos_a) = azimuth.to_radians().sin_cos();
                Self::perspective(
                    Vec2::new(cos_a, sin_a),
                    elevation.clamp(1.0, 90.0),
                    distance.max(0.0),
                    room,
                    aspect,
                )
            }
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
            view,
            near,
            far,
            orthographic: true,
            eye,
        }
    }

    /// Looks at the room's centre from `outward` (a horizontal unit vector) at `elevation`
    /// degrees, `distance` times as far as the room's corners just fit the frame.
    fn perspective(outward: Vec2, elevation: f32, distance: f32, room: Vec3, aspect: f32) -> Self {
        let target = Vec3::new(0.5 * room.x, 0.5 * room.y, 0.3 * room.z);
        let (sin_e, cos_e) = elevation.to_radians().sin_cos();
        // Straight down, "up" in the image cannot be +z; north is up as in the plan.
        let up = if cos_e < 1e-4 { Vec3::Y } else { Vec3::Z };
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
            let view = Mat4::look_at_rh(eye, target, up);
            let proj = Mat4::perspective_rh(FOV_Y_DEGREES.to_radians(), aspect, near, far);
            Self {
                view_proj: proj * view,
                view,
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
        build(hi * distance)
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

    /// The room point seen at pixel coordinates `pixel` (x right, y down, continuous: a pixel's
    /// centre is at `+0.5`) at `depth` metres along the view axis, as in [`crate::Frame`]'s
    /// depth; the inverse of [`Self::project`].
    #[must_use]
    pub fn unproject(&self, pixel: Vec2, depth: f32, width: u32, height: u32) -> Vec3 {
        self.unprojector(width, height).point(pixel, depth)
    }

    /// Eye space to room space: the camera's pose (the inverse of `view`).
    #[must_use]
    pub fn pose(&self) -> Mat4 {
        self.view.inverse()
    }

    /// This camera's pose in `reference`'s eye space (x right, y up, z backwards): the rigid
    /// motion from `reference` to this camera, the same whatever frame the room is given in.
    #[must_use]
    pub fn relative_to(&self, reference: &Self) -> Mat4 {
        reference.view * self.pose()
    }

    /// [`Self::unproject`] for many pixels of one image, the matrices inverted once.
    #[must_use]
    pub fn unprojector(&self, width: u32, height: u32) -> Unprojector {
        Unprojector {
            inverse_proj: (self.view_proj * self.view.inverse()).inverse(),
            inverse_view: self.view.inverse(),
            size: Vec2::new(width as f32, height as f32),
        }
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

/// Maps pixels with their depth back to room coordinates for one camera and image size.
#[derive(Debug, Clone, Copy)]
pub struct Unprojector {
    inverse_proj: Mat4,
    inverse_view: Mat4,
    size: Vec2,
}

impl Unprojector {
    /// See [`Camera::unproject`].
    #[must_use]
    pub fn point(&self, pixel: Vec2, depth: f32) -> Vec3 {
        let ndc = Vec2::new(
            pixel.x / self.size.x * 2.0 - 1.0,
            1.0 - pixel.y / self.size.y * 2.0,
        );
        // The pixel's ray in eye space, from its points on the near and far planes; eye-space
        // depth is linear along it for both projections.
        let at = |z: f32| {
            let p = self.inverse_proj * ndc.extend(z).extend(1.0);
            p.xyz() / p.w
        };
        let (near, far) = (at(0.0), at(1.0));
        let t = (depth + near.z) / (near.z - far.z);
        (self.inverse_view * (near + (far - near) * t).extend(1.0)).xyz()
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

    /// One of each view kind, straight down included.
    fn every_view() -> Vec<View> {
        vec![
            View::Top,
            View::Perspective(Corner::SouthWest),
            View::Perspective(Corner::NorthEast),
            View::Orbit {
                azimuth: 10.0,
                elevation: 20.0,
                distance: 1.0,
            },
            View::Orbit {
                azimuth: 300.0,
                elevation: 60.0,
                distance: 1.5,
            },
            View::Orbit {
                azimuth: 0.0,
                elevation: 90.0,
                distance: 1.0,
            },
        ]
    }

    #[test]
    fn unproject_inverts_project_on_every_view() {
        let room = Vec3::new(5.0, 3.5, 2.7);
        for view in every_view() {
            let camera = Camera::new(view, room, 1.25);
            for p in [
                Vec3::new(0.3, 0.2, 0.0),
                Vec3::new(2.5, 1.75, 1.0),
                Vec3::new(4.9, 3.4, 2.0),
                Vec3::new(1.0, 3.0, 0.4),
            ] {
                let pixel = camera.project(p, 560, 448).unwrap();
                let depth = -(camera.view * p.extend(1.0)).z;
                let back = camera.unproject(pixel, depth, 560, 448);
                assert!((back - p).length() < 1e-3, "{view:?}: {p} → {back}");
            }
        }
    }

    #[test]
    fn orbit_views_frame_the_room_and_match_the_corner_view_they_stand_for() {
        // In a square room the south-west corner lies at azimuth 225°.
        let room = Vec3::new(4.0, 4.0, 2.5);
        let corner = Camera::new(View::Perspective(Corner::SouthWest), room, 1.0);
        let orbit = Camera::new(
            View::Orbit {
                azimuth: 225.0,
                elevation: ELEVATION_DEGREES,
                distance: 1.0,
            },
            room,
            1.0,
        );
        assert!((corner.eye - orbit.eye).length() < 1e-3);
        for view in every_view() {
            let camera = Camera::new(view, room, 1.0);
            for i in 0..8 {
                let p = Vec3::new(
                    if i & 1 == 0 { 0.0 } else { room.x },
                    if i & 2 == 0 { 0.0 } else { room.y },
                    if i & 4 == 0 { 0.0 } else { room.z },
                );
                let pixel = camera.project(p, 100, 100).unwrap();
                assert!(
                    pixel.min_element() >= 0.0 && pixel.max_element() <= 100.0,
                    "{view:?}: {p} → {pixel}"
                );
            }
        }
        let farther = Camera::new(
            View::Orbit {
                azimuth: 225.0,
                elevation: ELEVATION_DEGREES,
                distance: 2.0,
            },
            room,
            1.0,
        );
        let centre = Vec3::new(2.0, 2.0, 0.75);
        assert!(
            ((farther.eye - centre).length() - 2.0 * (orbit.eye - centre).length()).abs() < 1e-3
        );
        assert_eq!(View::Top.name(), "top");
        assert_eq!(
            View::Orbit {
                azimuth: 225.0,
                elevation: 38.0,
                distance: 1.0
            }
            .name(),
            "orbit-a225-e38"
        );
    }
}
