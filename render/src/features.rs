//! Per-pixel geometry of a rendered view, the input of a policy's geometry channel
//! (Spatial-MLLM's 3D features, here exact rather than estimated).

use glam::Vec2;

use crate::Frame;

/// Points this close to the floor's plane (m) whose pixel shows no object are floor.
const FLOOR_TOLERANCE: f32 = 0.005;

/// One kind of per-pixel feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The room point the pixel shows, `(x, y, z)` in metres; zeros where nothing was drawn.
    Points,
    /// Distance along the view axis, metres; zero where nothing was drawn.
    Depth,
    /// 1 where something was drawn, 0 for the background.
    Valid,
    /// What the pixel shows, one-hot over floor, wall and object; zeros for the background.
    Kind,
}

impl Channel {
    /// Features per pixel.
    #[must_use]
    pub fn width(self) -> usize {
        match self {
            Self::Points | Self::Kind => 3,
            Self::Depth | Self::Valid => 1,
        }
    }
}

/// The features of every pixel, row-major from the top-left, `channels` in order: a
/// `(height, width, Σ widths)` array.
#[must_use]
pub fn pixel_features(frame: &Frame, channels: &[Channel]) -> Vec<f32> {
    let per_pixel: usize = channels.iter().map(|c| c.width()).sum();
    let unproject = frame.camera.unprojector(frame.width, frame.height);
    let width = frame.width as usize;
    let mut out = Vec::with_capacity(frame.depth.len() * per_pixel);
    for (i, (&depth, &id)) in frame.depth.iter().zip(&frame.ids).enumerate() {
        let valid = depth.is_finite();
        let point = if valid {
            unproject.point(
                Vec2::new((i % width) as f32 + 0.5, (i / width) as f32 + 0.5),
                depth,
            )
        } else {
            glam::Vec3::ZERO
        };
        for channel in channels {
            match channel {
                Channel::Points => out.extend_from_slice(&point.to_array()),
                Channel::Depth => out.push(if valid { depth } else { 0.0 }),
                Channel::Valid => out.push(f32::from(u8::from(valid))),
                Channel::Kind => {
                    let kind = match (valid, id > 0, point.z.abs() <= FLOOR_TOLERANCE) {
                        (false, ..) => [0.0; 3],
                        (true, true, _) => [0.0, 0.0, 1.0],
                        (true, false, true) => [1.0, 0.0, 0.0],
                        (true, false, false) => [0.0, 1.0, 0.0],
                    };
                    out.extend_from_slice(&kind);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use glam::Vec3;

    use super::*;
    use crate::{Camera, View};

    #[test]
    #[allow(clippy::float_cmp)] // one-hot values and zeros are exact
    fn features_follow_the_channels_in_order_and_zero_the_background() {
        let camera = Camera::new(View::Top, Vec3::new(4.0, 4.0, 2.5), 1.0);
        // Two pixels: the floor left of the room's centre, and nothing.
        let depth = camera.eye.z;
        let frame = Frame {
            width: 2,
            height: 1,
            color: vec![0; 8],
            ids: vec![0, 0],
            depth: vec![depth, f32::INFINITY],
            camera,
        };
        let channels = [
            Channel::Valid,
            Channel::Points,
            Channel::Kind,
            Channel::Depth,
        ];
        let f = pixel_features(&frame, &channels);
        assert_eq!(f.len(), 2 * 8);
        assert_eq!(f[0], 1.0);
        let seen = camera.unproject(Vec2::new(0.5, 0.5), depth, 2, 1);
        assert!((Vec3::new(f[1], f[2], f[3]) - seen).length() < 1e-5);
        assert!(seen.z.abs() < 1e-4 && (seen.y - 2.0).abs() < 1e-4 && seen.x < 2.0);
        assert_eq!(&f[4..7], &[1.0, 0.0, 0.0], "floor");
        assert!((f[7] - depth).abs() < 1e-6);
        assert_eq!(&f[8..], &[0.0; 8], "background");
    }
}
