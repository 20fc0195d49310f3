//! Free floor space: can a person walk around the furnished room?
//!
//! The floor is rasterised on a square grid (5 cm by default); a cell is occupied when its
//! centre lies inside the footprint of an object that stands within walking height (bottom
//! below [`FreeSpaceConfig::clearance`]) and is not flat enough to step on (height above
//! [`FreeSpaceConfig::step_height`], so rugs do not block). An agent of width
//! [`FreeSpaceConfig::agent_width`] can stand on a free cell when no occupied cell or wall is
//! closer than half its width. The largest 4-connected set of standing cells, widened by the
//! agent's half width (the floor its body sweeps), is reported as a fraction of the free floor.
//! When the room has a door, the same is reported for the region reachable from the door.

use serde::{Deserialize, Serialize};

use crate::room::{LayoutElement, OpeningKind};
use crate::scene::Scene;

/// Free-space parameters, metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FreeSpaceConfig {
    /// Grid cell side.
    pub cell: f64,
    /// Agent width.
    pub agent_width: f64,
    /// Objects whose bottom is higher than this do not block walking.
    pub clearance: f64,
    /// Objects no taller than this (rugs) do not block walking.
    pub step_height: f64,
}

impl Default for FreeSpaceConfig {
    fn default() -> Self {
        Self {
            cell: 0.05,
            agent_width: 0.2,
            clearance: 1.8,
            step_height: 0.03,
        }
    }
}

/// Free floor summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreeSpace {
    /// Fraction of the floor not covered by blocking objects.
    pub free_fraction: f64,
    /// Largest connected walkable region as a fraction of the free floor.
    pub largest_region_fraction: f64,
    /// Region reachable from the door as a fraction of the free floor; `None` without a door.
    pub door_reachable_fraction: Option<f64>,
}

/// Rasterises the scene and measures its free floor.
#[must_use]
pub fn free_space(scene: &Scene<'_>, cfg: &FreeSpaceConfig) -> FreeSpace {
    let size = scene.room.size;
    let nx = ((size.length / cfg.cell).ceil() as usize).clamp(1, 4000);
    let ny = ((size.width / cfg.cell).ceil() as usize).clamp(1, 4000);
    let (cx, cy) = (size.length / nx as f64, size.width / ny as f64);
    let centre = |i: usize, j: usize| [(i as f64 + 0.5) * cx, (j as f64 + 0.5) * cy];
    let mut occupied = vec![false; nx * ny];
    for p in &scene.placed {
        let b = &p.bounds;
        if b.bottom() > cfg.clearance || b.top() - b.bottom() <= cfg.step_height {
            continue;
        }
        let [x0, x1, y0, y1] = b.aabb_2d();
        let to_cell = |v: f64, c: f64, n: usize| ((v / c).floor().max(0.0) as usize).min(n);
        for j in to_cell(y0, cy, ny)..to_cell(y1, cy, ny).saturating_add(1).min(ny) {
            for i in to_cell(x0, cx, nx)..to_cell(x1, cx, nx).saturating_add(1).min(nx) {
                let [r, f] = b.to_local(centre(i, j));
                if r.abs() <= b.half[0] && f.abs() <= b.half[1] {
                    occupied[j * nx + i] = true;
                }
            }
        }
    }
    let free_cells = occupied.iter().filter(|o| !**o).count();
    let radius = cfg.agent_width / 2.0;
    let (rx, ry) = ((radius / cx).ceil() as usize, (radius / cy).ceil() as usize);
    // Standing cells: free, away from walls and from every occupied cell by the agent radius.
    let mut standing = vec![false; nx * ny];
    let blocked_near = dilate(&occupied, nx, ny, rx, ry);
    for j in 0..ny {
        for i in 0..nx {
            let [x, y] = centre(i, j);
            let clear_of_walls =
                x >= radius && y >= radius && size.length - x >= radius && size.width - y >= radius;
            standing[j * nx + i] = clear_of_walls && !blocked_near[j * nx + i];
        }
    }
    let labels = components(&standing, nx, ny);
    let fraction_of = |label: usize| {
        let region: Vec<bool> = labels.iter().map(|&l| l == label).collect();
        let swept = dilate(&region, nx, ny, rx, ry);
        let covered = swept
            .iter()
            .zip(&occupied)
            .filter(|(s, o)| **s && !**o)
            .count();
        if free_cells == 0 {
            0.0
        } else {
            covered as f64 / free_cells as f64
        }
    };
    let mut sizes = std::collections::BTreeMap::<usize, usize>::new();
    for &l in labels.iter().filter(|&&l| l != 0) {
        *sizes.entry(l).or_default() += 1;
    }
    // Largest region; ties go to the lowest label, i.e. the first in scan order.
    let largest = sizes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(&l, _)| l);
    let largest_region_fraction = largest.map_or(0.0, fraction_of);
    let door_reachable_fraction = scene
        .room
        .openings
        .iter()
        .find(|o| o.kind == OpeningKind::Door)
        .map(|door| {
            // The standing cells in a strip in front of the door, one agent width deep.
            let depth = cfg.agent_width + radius;
            let (lo, hi) = (
                door.offset - door.width / 2.0,
                door.offset + door.width / 2.0,
            );
            let mut touched = std::collections::BTreeSet::new();
            for j in 0..ny {
                for i in 0..nx {
                    let [x, y] = centre(i, j);
                    let (along, into) = match door.wall {
                        // `offset` runs from the wall's left end seen from inside the room.
                        LayoutElement::SouthWall => (size.length - x, y),
                        LayoutElement::NorthWall => (x, size.width - y),
                        LayoutElement::EastWall => (size.width - y, size.length - x),
                        _ => (y, x),
                    };
                    let label = labels[j * nx + i];
                    if label != 0 && into <= depth && along >= lo && along <= hi {
                        touched.insert(label);
                    }
                }
            }
            touched.into_iter().map(fraction_of).sum::<f64>().min(1.0)
        });
    FreeSpace {
        free_fraction: free_cells as f64 / (nx * ny) as f64,
        largest_region_fraction,
        door_reachable_fraction,
    }
}

/// Cells within `rx` × `ry` cells (a box) of a set cell.
fn dilate(cells: &[bool], nx: usize, ny: usize, rx: usize, ry: usize) -> Vec<bool> {
    // Separable: rows, then columns.
    let mut rows = vec![false; cells.len()];
    for j in 0..ny {
        for i in 0..nx {
            if cells[j * nx + i] {
                for k in i.saturating_sub(rx)..(i + rx + 1).min(nx) {
                    rows[j * nx + k] = true;
                }
            }
        }
    }
    let mut out = vec![false; cells.len()];
    for j in 0..ny {
        for i in 0..nx {
            if rows[j * nx + i] {
                for k in j.saturating_sub(ry)..(j + ry + 1).min(ny) {
                    out[k * nx + i] = true;
                }
            }
        }
    }
    out
}

/// 4-connected component labels (0 = not set), numbered in scan order from 1.
fn components(cells: &[bool], nx: usize, ny: usize) -> Vec<usize> {
    let mut labels = vec![0usize; cells.len()];
    let mut next = 0;
    let mut stack = Vec::new();
    for start in 0..cells.len() {
        if !cells[start] || labels[start] != 0 {
            continue;
        }
        next += 1;
        labels[start] = next;
        stack.push(start);
        while let Some(c) = stack.pop() {
            let (i, j) = (c % nx, c / nx);
            let neighbours = [
                (i > 0).then(|| c - 1),
                (i + 1 < nx).then(|| c + 1),
                (j > 0).then(|| c - nx),
                (j + 1 < ny).then(|| c + nx),
            ];
            for n in neighbours.into_iter().flatten() {
                if cells[n] && labels[n] == 0 {
                    labels[n] = next;
                    stack.push(n);
                }
            }
        }
    }
    labels
}
