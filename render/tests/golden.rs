//! Golden-image tests: renders of the fixture bedroom compared with committed PNGs under a
//! mean-error tolerance, so that driver rounding passes and real changes fail.
//!
//! On mismatch the test writes `<name>-actual.png` and `<name>-difference.png` to Cargo's
//! test temp dir and names them. `UPDATE_GOLDEN=1 cargo test -p metaspatial-render --test
//! golden` rewrites the goldens; look at them before committing.

mod common;

use std::path::Path;

use image::{Rgba, RgbaImage};
use metaspatial_render::{Corner, RenderOptions, Scene, View};

/// Mean absolute difference per RGB channel (0–255) a render may have from its golden.
const TOLERANCE: f64 = 1.5;

fn mean_error(a: &RgbaImage, b: &RgbaImage) -> f64 {
    let total: u64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>())
        .sum();
    total as f64 / f64::from(3 * a.width() * a.height())
}

fn check_golden(name: &str, scene: &Scene, options: &RenderOptions) {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let actual = renderer
        .render(scene, options)
        .expect("render")
        .color_image();
    let golden_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.png"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        actual.save(&golden_path).expect("write golden");
        return;
    }
    let golden = image::open(&golden_path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (set UPDATE_GOLDEN=1 to create it)",
                golden_path.display()
            )
        })
        .to_rgba8();
    let error = if golden.dimensions() == actual.dimensions() {
        mean_error(&golden, &actual)
    } else {
        f64::INFINITY
    };
    if error > TOLERANCE {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let actual_path = out.join(format!("{name}-actual.png"));
        let difference_path = out.join(format!("{name}-difference.png"));
        actual.save(&actual_path).expect("write actual");
        if golden.dimensions() == actual.dimensions() {
            let difference = RgbaImage::from_fn(actual.width(), actual.height(), |x, y| {
                let (p, q) = (actual.get_pixel(x, y), golden.get_pixel(x, y));
                let d = |c: usize| p[c].abs_diff(q[c]).saturating_mul(4);
                Rgba([d(0), d(1), d(2), 255])
            });
            difference.save(&difference_path).expect("write difference");
        }
        panic!(
            "{name}: mean error {error:.3} > {TOLERANCE} against {}; wrote {} and {}",
            golden_path.display(),
            actual_path.display(),
            difference_path.display()
        );
    }
}

#[test]
fn bedroom_perspective_matches_golden() {
    let options = RenderOptions {
        width: 224,
        height: 224,
        ..Default::default()
    };
    check_golden("bedroom-perspective", &common::bedroom_scene(), &options);
}

#[test]
fn bedroom_top_view_with_labels_matches_golden() {
    let options = RenderOptions {
        width: 224,
        height: 224,
        view: View::Top,
        labels: true,
    };
    check_golden("bedroom-top-labels", &common::bedroom_scene(), &options);
}

#[test]
fn empty_room_from_the_north_east_matches_golden() {
    let (room, _) = common::bedroom();
    let options = RenderOptions {
        width: 168,
        height: 112,
        view: View::Perspective(Corner::NorthEast),
        labels: false,
    };
    check_golden(
        "empty-north-east",
        &Scene::empty(&room).expect("scene"),
        &options,
    );
}
