// Scene shader: instanced boxes and meshes in a unit cube [-0.5, 0.5]^3, scaled to each
// instance's size, turned by its heading and moved to its centre.
//
// Outputs: location 0 is the lit colour, location 1 the object index (0 for the room).

struct Camera {
    view_proj: mat4x4<f32>,
    // xyz: direction towards the light; w unused.
    light: vec4<f32>,
};

@group(0) @binding(0) var<uniform> camera: Camera;

struct VertexIn {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
};

struct InstanceIn {
    @location(2) center: vec3<f32>,
    // (sin, cos) of the heading; heading turns clockwise seen from above.
    @location(3) heading: vec2<f32>,
    @location(4) size: vec3<f32>,
    @location(5) color: vec4<f32>,
    @location(6) object: u32,
    @location(7) flags: u32,
};

const FLAG_FRONT_MARKER: u32 = 1u;
const FLAG_EDGES: u32 = 2u;
const FLAG_GRID: u32 = 4u;

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    // Position in the unit cube, before scaling.
    @location(0) unit: vec3<f32>,
    @location(1) world_normal: vec3<f32>,
    @location(2) world: vec3<f32>,
    @location(3) @interpolate(flat) local_normal: vec3<f32>,
    @location(4) @interpolate(flat) size: vec3<f32>,
    @location(5) @interpolate(flat) color: vec4<f32>,
    @location(6) @interpolate(flat) object: u32,
    @location(7) @interpolate(flat) flags: u32,
};

fn turn(v: vec2<f32>, heading: vec2<f32>) -> vec2<f32> {
    // Clockwise by the heading: local +y (the front) goes to (sin, cos).
    return vec2<f32>(v.x * heading.y + v.y * heading.x, -v.x * heading.x + v.y * heading.y);
}

@vertex
fn vs_main(v: VertexIn, i: InstanceIn) -> VertexOut {
    let local = v.position * i.size;
    let world = vec3<f32>(turn(local.xy, i.heading), local.z) + i.center;
    // Normals transform by the inverse scale before turning.
    let n = normalize(v.normal / max(i.size, vec3<f32>(1e-6)));
    var out: VertexOut;
    out.clip = camera.view_proj * vec4<f32>(world, 1.0);
    out.unit = v.position;
    out.world_normal = vec3<f32>(turn(n.xy, i.heading), n.z);
    out.world = world;
    out.local_normal = v.normal;
    out.size = i.size;
    out.color = i.color;
    out.object = i.object;
    out.flags = i.flags;
    return out;
}

struct FragmentOut {
    @location(0) color: vec4<f32>,
    @location(1) object: u32,
};

// Distance in pixels from `coord` to the nearest multiple of `step`.
fn line_distance(coord: f32, step: f32, pixel: f32) -> f32 {
    let c = coord / step;
    return abs(c - round(c)) * step / max(pixel, 1e-6);
}

@fragment
fn fs_main(in: VertexOut) -> FragmentOut {
    // Derivatives are taken here, in uniform control flow.
    let metric = in.unit * in.size;
    let pixel = fwidth(metric);
    let world_pixel = fwidth(in.world);

    let n = normalize(in.world_normal);
    let diffuse = max(dot(n, normalize(camera.light.xyz)), 0.0);
    var color = in.color.rgb * (0.5 + 0.5 * diffuse);

    if (in.flags & FLAG_GRID) != 0u && in.local_normal.z > 0.5 {
        // A one-metre grid on the floor so that distances can be judged by eye.
        let d = min(line_distance(in.world.x, 1.0, world_pixel.x), line_distance(in.world.y, 1.0, world_pixel.y));
        if d < 0.75 {
            color = color * 0.82;
        }
    }

    if (in.flags & FLAG_FRONT_MARKER) != 0u && in.local_normal.z > 0.5 {
        // An arrow head on the top face pointing at the object's front (local +y).
        let u = in.unit.x;
        let v = in.unit.y;
        if v > -0.05 && v < 0.42 && abs(u) < 0.3 * (0.42 - v) / 0.47 {
            color = mix(color, vec3<f32>(1.0, 1.0, 1.0), 0.65);
        }
    }

    if (in.flags & FLAG_EDGES) != 0u {
        // Pixel distance to the face's border, using the two in-face axes.
        let border = (0.5 * in.size - abs(metric)) / max(pixel, vec3<f32>(1e-6));
        let a = abs(in.local_normal);
        var d: f32;
        if a.x > 0.5 {
            d = min(border.y, border.z);
        } else if a.y > 0.5 {
            d = min(border.x, border.z);
        } else {
            d = min(border.x, border.y);
        }
        if d < 1.25 {
            color = color * 0.3;
        }
    }

    var out: FragmentOut;
    out.color = vec4<f32>(color, 1.0);
    out.object = in.object;
    return out;
}

// Coverage pass: every fragment of object k sets bit k - 1 of its pixel's mask, with no depth
// test, so that the mask tells which objects would cover the pixel if drawn alone.
struct Coverage {
    width: u32,
    words: u32,
};

@group(1) @binding(0) var<storage, read_write> masks: array<atomic<u32>>;
@group(1) @binding(1) var<uniform> coverage: Coverage;

@fragment
fn fs_coverage(in: VertexOut) {
    if in.object == 0u {
        return;
    }
    let bit = in.object - 1u;
    let pixel = vec2<u32>(in.clip.xy);
    let word = (pixel.y * coverage.width + pixel.x) * coverage.words + bit / 32u;
    atomicOr(&masks[word], 1u << (bit % 32u));
}
