//! Our exact box–box penetration (separating axes over the five candidate axes of two boxes
//! rotated about z) agrees with parry's general convex contact query.

use metaspatial_env::Size;
use metaspatial_env::geometry::{OrientedBox, penetration};
use proptest::prelude::*;
use rapier3d::parry::query::contact;
use rapier3d::parry::shape::Cuboid;
use rapier3d::prelude::{Pose, Rotation, Vector};

fn parry_depth(b: &OrientedBox, heading: f64) -> (Pose, Cuboid) {
    let pose = Pose::from_parts(
        Vector::new(b.center[0] as f32, b.center[1] as f32, b.center[2] as f32),
        // Clockwise headings are negative rotations about z.
        Rotation::from_rotation_z(-(heading.to_radians() as f32)),
    );
    let half = Vector::new(b.half[0] as f32, b.half[1] as f32, b.half[2] as f32);
    (pose, Cuboid::new(half))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn penetration_matches_parry(
        c in (-1.0f64..1.0, -1.0f64..1.0, -0.5f64..0.5),
        s1 in (0.2f64..2.0, 0.2f64..2.0, 0.2f64..2.0),
        s2 in (0.2f64..2.0, 0.2f64..2.0, 0.2f64..2.0),
        h1 in 0.0f64..360.0,
        h2 in 0.0f64..360.0,
    ) {
        let a = OrientedBox::new([0.0, 0.0, 0.0], Size { length: s1.0, width: s1.1, height: s1.2 }, h1);
        let b = OrientedBox::new([c.0, c.1, c.2], Size { length: s2.0, width: s2.1, height: s2.2 }, h2);
        let ours = penetration(&a, &b);
        let (p1, g1) = parry_depth(&a, h1);
        let (p2, g2) = parry_depth(&b, h2);
        let theirs = contact(&p1, &g1, &p2, &g2, 0.0).unwrap();
        if ours > 1e-3 {
            let depth = -f64::from(theirs.expect("parry sees the overlap").dist);
            prop_assert!((depth - ours).abs() < 1e-4, "ours {ours}, parry {depth}");
        } else if ours < -1e-3 {
            prop_assert!(theirs.is_none(), "ours says apart by {}, parry {:?}", -ours, theirs.map(|c| c.dist));
        }
    }
}
