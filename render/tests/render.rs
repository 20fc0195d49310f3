//! Behaviour of the renderer on lavapipe or a GPU: id buffers against geometry, batching,
//! image metrics, glTF assets, bad input and device loss.

mod common;

use glam::Vec3;
use metaspatial_env::{Layout, ObjectSpec, Placement, Pose, Room, RoomSize, Size};
use metaspatial_render::{FloorCell, FloorClearance, RenderError, RenderOptions, Scene, View};

fn object(id: &str, size: [f64; 3]) -> ObjectSpec {
    ObjectSpec {
        id: id.into(),
        category: id.split('_').next().unwrap_or(id).into(),
        size: Size {
            length: size[0],
            width: size[1],
            height: size[2],
        },
        on_floor: true,
        facing: None,
        placement: Placement::default(),
        rotation: None,
        position: None,
        style: None,
        material: None,
        asset: None,
    }
}

fn room(objects: Vec<ObjectSpec>) -> Room {
    Room {
        id: "test_room".into(),
        description: String::new(),
        size: RoomSize {
            length: 4.0,
            width: 4.0,
            height: 2.5,
        },
        objects,
        openings: Vec::new(),
    }
}

fn pose(id: &str, position: [f64; 3], rotation: f64) -> Pose {
    Pose {
        id: id.into(),
        position,
        rotation,
    }
}

fn top(size: u32) -> RenderOptions {
    RenderOptions {
        width: size,
        height: size,
        view: View::Top,
        labels: false,
    }
}

#[test]
fn top_view_ids_and_depth_match_footprints() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let scene = common::bedroom_scene();
    let (w, h) = (224, 224);
    let frame = renderer.render(&scene, &top(w)).expect("render");
    let camera = frame.camera;
    // Pixels whose centre lies within 1.5 pixels of a footprint edge may go either way.
    let pixel_metres = (camera.pixel_to_floor(1, 0, w, h) - camera.pixel_to_floor(0, 0, w, h)).x;
    let margin = 1.5 * pixel_metres;
    let (mut checked, mut wrong) = (0, Vec::new());
    for py in 0..h {
        for px in 0..w {
            let p = camera.pixel_to_floor(px, py, w, h);
            let near_edge = scene.objects.iter().any(|o| {
                [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)]
                    .iter()
                    .any(|(dx, dy)| {
                        o.footprint_contains(p.x + dx * margin, p.y + dy * margin)
                            != o.footprint_contains(p.x, p.y)
                    })
            });
            if near_edge {
                continue;
            }
            // The highest object over the point is the one seen from above.
            let expected = scene
                .objects
                .iter()
                .filter(|o| o.footprint_contains(p.x, p.y))
                .max_by(|a, b| a.top().total_cmp(&b.top()));
            let i = (py * w + px) as usize;
            let got = frame.ids[i];
            checked += 1;
            if got != expected.map_or(0, |o| o.index) {
                wrong.push((px, py, got));
            }
            if let Some(o) = expected {
                let depth = camera.eye.z - o.top();
                assert!(
                    (frame.depth[i] - depth).abs() < 0.01,
                    "depth {} vs {depth}",
                    frame.depth[i]
                );
            }
        }
    }
    assert!(checked > w * h / 2, "only {checked} pixels away from edges");
    assert!(
        wrong.is_empty(),
        "{} of {checked} pixels disagree, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn batch_matches_single_renders_and_ids_png_round_trips() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let (room, layout) = common::bedroom();
    let mut moved = layout.clone();
    moved.poses[5].position = [2.0, 1.0, 0.45];
    let scenes = [
        Scene::new(&room, &layout).expect("scene"),
        Scene::empty(&room).expect("scene"),
        Scene::new(&room, &moved).expect("scene"),
    ];
    let options = RenderOptions {
        width: 112,
        height: 84,
        ..Default::default()
    };
    let batch = renderer.render_batch(&scenes, &options).expect("batch");
    assert_eq!(batch.len(), 3);
    for (scene, batched) in scenes.iter().zip(&batch) {
        let single = renderer.render(scene, &options).expect("single");
        assert_eq!(single.color, batched.color);
        assert_eq!(single.ids, batched.ids);
    }
    assert_ne!(
        batch[0].ids, batch[2].ids,
        "moving the chair changes the id buffer"
    );
    assert!(
        batch[1].ids.iter().all(|&id| id == 0),
        "the empty room has no objects"
    );
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ids-round-trip.png");
    batch[0].save_ids_png(&path).expect("save");
    let back = image::open(&path).expect("load").to_luma16();
    assert!(
        back.pixels()
            .zip(&batch[0].ids)
            .all(|(p, &id)| u32::from(p[0]) == id)
    );
}

#[test]
fn visibility_counts_occlusion_from_the_corner() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let room = room(vec![
        object("wardrobe_1", [1.0, 1.0, 2.2]),
        object("box_1", [0.4, 0.4, 0.4]),
    ]);
    // The default camera looks from behind the south-west corner: the box hides behind the
    // wardrobe on the diagonal.
    let layout = Layout {
        poses: vec![
            pose("wardrobe_1", [1.2, 1.2, 1.1], 0.0),
            pose("box_1", [2.0, 2.0, 0.2], 0.0),
        ],
    };
    let scene = Scene::new(&room, &layout).expect("scene");
    let result = renderer
        .visibility(&[scene], &RenderOptions::default())
        .expect("visibility");
    let [wardrobe, hidden] = [&result[0][0], &result[0][1]];
    assert!(
        wardrobe.covered_pixels > 1000 && wardrobe.fraction() > 0.99,
        "{wardrobe:?}"
    );
    assert!(
        hidden.covered_pixels > 100 && hidden.fraction() < 0.5,
        "{hidden:?}"
    );
    // Alone, the box is in plain view: moving the wardrobe away makes it fully visible.
    let apart = Layout {
        poses: vec![
            pose("wardrobe_1", [3.4, 0.6, 1.1], 0.0),
            pose("box_1", [2.0, 2.0, 0.2], 0.0),
        ],
    };
    let scene = Scene::new(&room, &apart).expect("scene");
    let result = renderer
        .visibility(&[scene], &RenderOptions::default())
        .expect("visibility");
    assert!(result[0][1].fraction() > 0.99, "{:?}", result[0][1]);
    assert_eq!(result[0][1].covered_pixels, hidden.covered_pixels);
}

#[test]
fn free_floor_excludes_blocking_footprints_only() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let scene = common::bedroom_scene();
    let floors = renderer
        .free_floor(
            std::slice::from_ref(&scene),
            224,
            224,
            FloorClearance::default(),
        )
        .expect("free floor");
    let floor = &floors[0];
    // Rug (too flat) and ceiling lamp (too high) leave the floor free.
    let blocked: f32 = scene
        .objects
        .iter()
        .filter(|o| !o.id.starts_with("rug") && !o.id.starts_with("ceiling"))
        .map(|o| o.size.x * o.size.y)
        .sum();
    let expected = 1.0 - blocked / (scene.size.x * scene.size.y);
    assert!(
        (floor.free_fraction() - expected).abs() < 0.01,
        "{} vs {expected}",
        floor.free_fraction()
    );
    let under_bed = floor
        .camera
        .project(Vec3::new(2.5, 2.95, 0.0), 224, 224)
        .expect("on screen");
    let cell = |p: glam::Vec2| floor.cells[(p.y as u32 * 224 + p.x as u32) as usize];
    assert_eq!(cell(under_bed), FloorCell::Occupied);
    let on_rug = floor
        .camera
        .project(Vec3::new(2.5, 1.2, 0.0), 224, 224)
        .expect("on screen");
    assert_eq!(cell(on_rug), FloorCell::Free);
    assert_eq!(floor.cells[0], FloorCell::Outside);
}

/// A GLB holding a pyramid whose apex leans to the asset's front (+Z in glTF).
fn pyramid_glb() -> Vec<u8> {
    let positions: [[f32; 3]; 5] = [
        [-1.0, 0.0, -1.0],
        [1.0, 0.0, -1.0],
        [1.0, 0.0, 1.0],
        [-1.0, 0.0, 1.0],
        [0.0, 2.0, 1.0],
    ];
    let indices: [u32; 18] = [0, 2, 1, 0, 3, 2, 0, 1, 4, 1, 2, 4, 2, 3, 4, 3, 0, 4];
    let mut bin: Vec<u8> = bytemuck_bytes(&positions.concat());
    bin.extend(indices.iter().flat_map(|i| i.to_le_bytes()));
    let json = format!(
        r#"{{"asset":{{"version":"2.0"}},"scene":0,"scenes":[{{"nodes":[0]}}],"nodes":[{{"mesh":0}}],
        "meshes":[{{"primitives":[{{"attributes":{{"POSITION":0}},"indices":1}}]}}],
        "buffers":[{{"byteLength":{}}}],
        "bufferViews":[{{"buffer":0,"byteOffset":0,"byteLength":60}},{{"buffer":0,"byteOffset":60,"byteLength":72}}],
        "accessors":[{{"bufferView":0,"componentType":5126,"count":5,"type":"VEC3","min":[-1,0,-1],"max":[1,2,1]}},
                     {{"bufferView":1,"componentType":5125,"count":18,"type":"SCALAR"}}]}}"#,
        bin.len()
    );
    let mut json = json.into_bytes();
    json.resize(json.len().next_multiple_of(4), b' ');
    bin.resize(bin.len().next_multiple_of(4), 0);
    let total = 12 + 8 + json.len() + 8 + bin.len();
    let mut glb = Vec::with_capacity(total);
    for word in [
        0x4654_6C67_u32,
        2,
        total as u32,
        json.len() as u32,
        0x4E4F_534A,
    ] {
        glb.extend(word.to_le_bytes());
    }
    glb.extend(&json);
    for word in [bin.len() as u32, 0x004E_4942] {
        glb.extend(word.to_le_bytes());
    }
    glb.extend(&bin);
    glb
}

fn bytemuck_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn gltf_asset_fills_its_box_and_faces_its_heading() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyramid.glb");
    std::fs::write(&path, pyramid_glb()).expect("write glb");
    let mut spec = object("sculpture_1", [1.0, 2.0, 1.0]);
    spec.asset = Some(path.display().to_string());
    let room = room(vec![spec]);
    // Heading 90: the front (where the apex leans) faces east, the 2 m width runs along x.
    let layout = Layout {
        poses: vec![pose("sculpture_1", [2.0, 2.0, 0.5], 90.0)],
    };
    let scene = Scene::new(&room, &layout).expect("scene");
    let frame = renderer.render(&scene, &top(224)).expect("render");
    let pixel = |x: f32, y: f32| {
        let p = frame
            .camera
            .project(Vec3::new(x, y, 0.0), 224, 224)
            .expect("on screen");
        (p.y as u32 * 224 + p.x as u32) as usize
    };
    // The base fills the footprint: 2 m along x, 1 m along y.
    assert_eq!(frame.ids[pixel(1.1, 2.0)], 1);
    assert_eq!(frame.ids[pixel(2.9, 2.0)], 1);
    assert_eq!(frame.ids[pixel(2.0, 2.4)], 1);
    assert_eq!(frame.ids[pixel(2.0, 2.6)], 0);
    assert_eq!(frame.ids[pixel(3.1, 2.0)], 0);
    // The apex (the highest, nearest point) is at the east edge.
    assert!(frame.depth[pixel(2.85, 2.0)] < frame.depth[pixel(1.15, 2.0)] - 0.5);
}

#[test]
fn bad_requests_are_errors_naming_what_is_wrong() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let scene = common::bedroom_scene();
    let options = RenderOptions {
        width: 0,
        ..Default::default()
    };
    assert!(matches!(
        renderer.render(&scene, &options),
        Err(RenderError::Request(_))
    ));
    let mut spec = object("statue_1", [0.5, 0.5, 1.0]);
    spec.asset = Some("no/such/asset.glb".into());
    let room = room(vec![spec]);
    let layout = Layout {
        poses: vec![pose("statue_1", [1.0, 1.0, 0.5], 0.0)],
    };
    let error = renderer
        .render(
            &Scene::new(&room, &layout).expect("scene"),
            &RenderOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("statue_1") && error.contains("no/such/asset.glb"),
        "{error}"
    );
    // The renderer still works after an error.
    renderer
        .render(&scene, &top(56))
        .expect("render after error");
}

#[test]
fn lost_device_is_recreated() {
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let scene = common::bedroom_scene();
    let options = top(56);
    let before = renderer.render(&scene, &options).expect("render");
    renderer.lose_device();
    let after = renderer
        .render(&scene, &options)
        .expect("render after loss");
    assert_eq!(before.color, after.color);
    assert_eq!(before.ids, after.ids);
}

#[test]
fn a_box_seen_from_above_fills_the_voxels_worked_out_by_hand() {
    use metaspatial_render::coverage::{SceneVoxels, Target};
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    // From above only the 1.1 × 0.6 m top face shows: a flat cloud, so its short side sets the
    // voxel size, 0.6 / 3 = 0.2 m; the long side then spans 1.1 / 0.2 = 5.5 voxels, so 6.
    // 3 × 6 = 18 voxels.
    let room = room(vec![object("box_1", [1.1, 0.6, 0.8])]);
    let layout = Layout {
        poses: vec![pose("box_1", [1.7, 2.3, 0.4], 0.0)],
    };
    let scene = Scene::new(&room, &layout).expect("scene");
    let frame = renderer.render(&scene, &top(448)).expect("render");
    let voxels = SceneVoxels::new(&[&frame], Target::Objects, 3);
    assert!((voxels.size - 0.2).abs() < 0.01, "{}", voxels.size);
    assert_eq!(voxels.total(), 18);
    assert_eq!(voxels.greedy(0..1, 2), [0]);
    assert!((voxels.objects_half_visible(&[0]) - 1.0).abs() < 1e-12);
}

#[test]
fn orbit_views_see_the_room_from_where_they_stand() {
    use metaspatial_render::coverage::{SceneVoxels, Target, candidate_views};
    let Some(mut renderer) = common::renderer() else {
        return;
    };
    let scene = common::bedroom_scene();
    let frames: Vec<_> = candidate_views(4)
        .into_iter()
        .map(|view| {
            let options = RenderOptions {
                width: 112,
                height: 112,
                view,
                labels: false,
            };
            renderer.render(&scene, &options).expect("render")
        })
        .collect();
    // Every drawn pixel maps back inside the room's box, walls and floor slab included.
    for frame in &frames {
        let unproject = frame.camera.unprojector(frame.width, frame.height);
        let drawn = frame.depth.iter().filter(|d| d.is_finite()).count();
        assert!(drawn > 112 * 112 / 4, "{drawn} pixels drawn");
        for (i, &d) in frame
            .depth
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_finite())
        {
            let p = unproject.point(
                glam::Vec2::new((i % 112) as f32 + 0.5, (i / 112) as f32 + 0.5),
                d,
            );
            assert!(
                p.cmpge(Vec3::new(-0.2, -0.2, -0.2)).all()
                    && p.cmple(scene.size + Vec3::splat(0.2)).all(),
                "{p}"
            );
        }
    }
    let voxels = SceneVoxels::new(&frames.iter().collect::<Vec<_>>(), Target::Objects, 20);
    let chosen = voxels.greedy(0..4, 2);
    assert_eq!(chosen.len(), 2);
    assert!(voxels.coverage(&chosen) >= voxels.coverage(&[0, 1]).max(voxels.coverage(&[0, 2])));
    assert!(voxels.coverage(&[0, 1, 2, 3]) > 0.999);
}
