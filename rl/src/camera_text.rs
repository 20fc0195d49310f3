//! Camera poses as prompt text (MILO's relative camera-pose encoding, in words): each image the
//! model sees can be preceded by where it was taken from, in room coordinates or relative to the
//! first image of its turn.

use glam::{EulerRot, Mat4, Vec3};
use metaspatial_render::Camera;
use serde::{Deserialize, Serialize};

/// What precedes each image in the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CameraText {
    /// Nothing.
    #[default]
    None,
    /// The camera's position in the room and the heading and pitch it looks at.
    Absolute,
    /// The camera's motion from the first image of the turn: its shift (right, up, forward, in
    /// that camera's frame) and its turn (yaw, pitch, roll).
    Relative,
}

/// Whole degrees.
fn degrees(radians: f32) -> i32 {
    radians.to_degrees().round() as i32
}

/// Centimetres, without a negative zero for a shift that rounds to nothing.
fn metres(value: f32) -> f32 {
    (value * 100.0).round() / 100.0 + 0.0
}

/// Where `camera` stands and looks in the room (heading clockwise from +y, as object headings).
fn absolute(camera: &Camera) -> String {
    let pose = camera.pose();
    let eye = pose.w_axis.truncate();
    let forward = -pose.z_axis.truncate();
    let heading = degrees(forward.x.atan2(forward.y)).rem_euclid(360);
    let pitch = degrees(forward.z.clamp(-1.0, 1.0).asin());
    format!(
        "camera at ({:.2}, {:.2}, {:.2}) m, heading {heading}°, pitch {pitch}°",
        metres(eye.x),
        metres(eye.y),
        metres(eye.z)
    )
}

/// How `camera` moved and turned from `first` (in `first`'s frame).
fn relative(camera: &Camera, first: &Camera) -> String {
    let motion: Mat4 = camera.relative_to(first);
    let shift = motion.w_axis.truncate();
    // Eye space: x right, y up, z backwards; yaw turns about y, pitch about x, roll about z.
    let (yaw, pitch, roll) = glam::Quat::from_mat4(&motion).to_euler(EulerRot::YXZ);
    let moved = Vec3::new(shift.x, shift.y, -shift.z);
    format!(
        "camera moved {:.2} m right, {:.2} m up, {:.2} m forward and turned {}° left, {}° up, {}° roll from the first image",
        metres(moved.x),
        metres(moved.y),
        metres(moved.z),
        degrees(yaw),
        degrees(pitch),
        degrees(roll)
    )
}

/// `camera`'s pose relative to `first` as features: the rotation's first two columns (a
/// continuous 6D encoding) and the translation (m), in `first`'s camera frame.
#[must_use]
pub fn relative_pose(camera: &Camera, first: &Camera) -> [f32; 9] {
    let motion = camera.relative_to(first);
    let (x, y, t) = (motion.x_axis, motion.y_axis, motion.w_axis);
    [x.x, x.y, x.z, y.x, y.y, y.z, t.x, t.y, t.z]
}

/// The text before each of one scene's images (the views of one turn), or none.
#[must_use]
pub fn captions(cameras: &[Camera], mode: CameraText) -> Vec<String> {
    let Some(first) = cameras.first() else {
        return Vec::new();
    };
    cameras
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let pose = match mode {
                CameraText::None => return None,
                CameraText::Absolute => absolute(c),
                CameraText::Relative => relative(c, first),
            };
            Some(format!("Image {} of this turn: {pose}.\n", i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use glam::Quat;
    use metaspatial_render::{Corner, View};

    use super::*;

    /// The same cameras with the whole room turned and moved.
    fn moved(cameras: &[Camera], motion: Mat4) -> Vec<Camera> {
        cameras
            .iter()
            .map(|c| Camera {
                view: c.view * motion.inverse(),
                view_proj: c.view_proj * motion.inverse(),
                eye: motion.transform_point3(c.eye),
                ..*c
            })
            .collect()
    }

    #[test]
    fn relative_text_ignores_a_rigid_motion_of_the_room_and_absolute_text_does_not() {
        let room = Vec3::new(5.0, 4.0, 2.7);
        let cameras: Vec<Camera> = [
            View::Perspective(Corner::SouthWest),
            View::Orbit {
                azimuth: 45.0,
                elevation: 30.0,
                distance: 1.0,
            },
            View::Top,
        ]
        .into_iter()
        .map(|v| Camera::new(v, room, 1.0))
        .collect();
        let motion =
            Mat4::from_rotation_translation(Quat::from_rotation_z(0.7), Vec3::new(3.0, -2.0, 0.5));
        let turned = moved(&cameras, motion);
        assert_eq!(
            captions(&cameras, CameraText::Relative),
            captions(&turned, CameraText::Relative)
        );
        let (a, b) = (
            captions(&cameras, CameraText::Absolute),
            captions(&turned, CameraText::Absolute),
        );
        assert_eq!(a.len(), 3);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "{a:?} vs {b:?}");
        assert!(captions(&cameras, CameraText::None).is_empty());
        // The pose features the geometry channel is given are unchanged too.
        for (c, t) in cameras.iter().zip(&turned) {
            let (a, b) = (relative_pose(c, &cameras[0]), relative_pose(t, &turned[0]));
            assert!(
                a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn the_first_image_relative_to_itself_is_the_identity() {
        let camera = Camera::new(View::Top, Vec3::new(4.0, 3.0, 2.5), 1.0);
        let other = Camera::new(
            View::Perspective(Corner::NorthEast),
            Vec3::new(4.0, 3.0, 2.5),
            1.0,
        );
        let text = captions(&[camera, other], CameraText::Relative);
        assert_eq!(
            text[0],
            "Image 1 of this turn: camera moved 0.00 m right, 0.00 m up, 0.00 m forward and turned 0° left, 0° up, 0° roll from the first image.\n"
        );
        assert_ne!(text[1], text[0].replace("Image 1", "Image 2"));
        let identity = relative_pose(&camera, &camera);
        let expected = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        assert!(
            identity
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-5),
            "{identity:?}"
        );
        // The plan looks straight down; north is up in it.
        let plan = captions(&[camera], CameraText::Absolute);
        assert!(
            plan[0].contains("camera at (2.00, 1.50,") && plan[0].contains("pitch -90°"),
            "{plan:?}"
        );
    }

    #[test]
    fn each_image_of_the_prompt_follows_its_caption() {
        use metaspatial_env::{Episode, EpisodeConfig};
        use metaspatial_policy::Content;
        let first = Episode::new(crate::fixtures::room(), EpisodeConfig::default()).reset();
        let captions = ["one\n".to_owned(), "two\n".to_owned()];
        let (messages, text) = crate::rollout::chat_messages(&first, 2, &captions);
        let kinds: Vec<String> = messages[0]
            .content
            .iter()
            .map(|c| match c {
                Content::Text { text } => text.chars().take(3).collect(),
                Content::Image => "[image]".to_owned(),
            })
            .collect();
        assert_eq!(kinds[..4], ["one", "[image]", "two", "[image]"]);
        assert!(text.starts_with("one\ntwo\n"));
        let (plain, _) = crate::rollout::chat_messages(&first, 2, &[]);
        assert_eq!(plain[0].content.len(), messages[0].content.len() - 2);
    }
}
