//! The furniture catalogue: categories, how they are mounted and realistic size ranges.
//!
//! Sizes are in metres in the object's own frame (length left–right, width front–back, height
//! up), taken from common retail dimensions: a queen bed is 1.5–1.7 m wide and 2.0–2.2 m long,
//! a dining chair 0.42–0.5 m square and 0.8–0.95 m tall, a kitchen counter 0.6 m deep and 0.9 m
//! tall. Ranges are inclusive; the generator draws uniformly and rounds to the centimetre.

/// How an object of a category is held up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mount {
    /// Stands on the floor.
    Floor,
    /// Hangs on a wall, back against it, off the floor.
    Wall,
    /// Hangs from the ceiling.
    Ceiling,
    /// Rests on top of another object.
    Tabletop,
}

/// A furniture category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Category {
    /// Id stem, e.g. `nightstand` (objects are `nightstand_1`, `nightstand_2`, …).
    pub name: &'static str,
    /// How it is held up.
    pub mount: Mount,
    /// Length range (left–right), metres.
    pub length: (f64, f64),
    /// Width range (front–back), metres.
    pub width: (f64, f64),
    /// Height range, metres.
    pub height: (f64, f64),
    /// Materials it is commonly made of.
    pub materials: &'static [&'static str],
}

const WOOD: &[&str] = &["oak", "walnut", "pine", "birch", "painted wood", "teak"];
const FABRIC: &[&str] = &["linen", "velvet", "wool", "leather", "cotton", "boucle"];
const METAL: &[&str] = &[
    "brushed steel",
    "black metal",
    "brass",
    "chrome",
    "aluminium",
];
const CERAMIC: &[&str] = &["ceramic", "porcelain", "stone", "glass", "terracotta"];
const MIXED: &[&str] = &["oak", "black metal", "glass", "rattan", "lacquered wood"];
const TEXTILE: &[&str] = &["wool", "jute", "cotton", "sisal", "shag"];
const PLASTIC: &[&str] = &["plastic", "painted wood", "birch", "foam"];
const PAPER: &[&str] = &["canvas", "paper", "framed print", "glass"];

const fn c(
    name: &'static str,
    mount: Mount,
    length: (f64, f64),
    width: (f64, f64),
    height: (f64, f64),
    materials: &'static [&'static str],
) -> Category {
    Category {
        name,
        mount,
        length,
        width,
        height,
        materials,
    }
}

use Mount::{Ceiling, Floor, Tabletop, Wall};

/// Every category the generator knows, grouped by mount.
pub const CATALOGUE: &[Category] = &[
    // Floor: sleeping and storage.
    c(
        "double_bed",
        Floor,
        (1.5, 1.85),
        (2.0, 2.2),
        (0.9, 1.2),
        WOOD,
    ),
    c(
        "single_bed",
        Floor,
        (0.9, 1.05),
        (1.9, 2.05),
        (0.8, 1.0),
        WOOD,
    ),
    c("bunk_bed", Floor, (1.0, 1.1), (2.0, 2.1), (1.6, 1.8), WOOD),
    c("crib", Floor, (0.65, 0.75), (1.25, 1.4), (0.9, 1.05), WOOD),
    c(
        "nightstand",
        Floor,
        (0.4, 0.55),
        (0.35, 0.45),
        (0.5, 0.65),
        WOOD,
    ),
    c(
        "wardrobe",
        Floor,
        (1.0, 2.0),
        (0.55, 0.65),
        (1.9, 2.2),
        WOOD,
    ),
    c(
        "dresser",
        Floor,
        (0.9, 1.6),
        (0.45, 0.55),
        (0.75, 0.95),
        WOOD,
    ),
    c(
        "chest_of_drawers",
        Floor,
        (0.7, 1.0),
        (0.4, 0.5),
        (0.9, 1.2),
        WOOD,
    ),
    c(
        "bookshelf",
        Floor,
        (0.6, 1.2),
        (0.28, 0.4),
        (1.5, 2.1),
        WOOD,
    ),
    c(
        "storage_cabinet",
        Floor,
        (0.6, 1.0),
        (0.35, 0.5),
        (0.8, 1.4),
        WOOD,
    ),
    c(
        "filing_cabinet",
        Floor,
        (0.4, 0.5),
        (0.5, 0.65),
        (0.6, 1.3),
        METAL,
    ),
    c(
        "shoe_rack",
        Floor,
        (0.6, 1.0),
        (0.28, 0.35),
        (0.45, 0.9),
        WOOD,
    ),
    c(
        "toy_chest",
        Floor,
        (0.7, 0.9),
        (0.4, 0.5),
        (0.45, 0.55),
        PLASTIC,
    ),
    c(
        "sideboard",
        Floor,
        (1.4, 2.0),
        (0.4, 0.5),
        (0.7, 0.85),
        WOOD,
    ),
    c(
        "display_cabinet",
        Floor,
        (0.8, 1.2),
        (0.38, 0.45),
        (1.6, 1.9),
        MIXED,
    ),
    // Floor: seating.
    c("sofa", Floor, (1.8, 2.4), (0.85, 1.0), (0.75, 0.9), FABRIC),
    c(
        "loveseat",
        Floor,
        (1.3, 1.6),
        (0.8, 0.95),
        (0.75, 0.9),
        FABRIC,
    ),
    c(
        "armchair",
        Floor,
        (0.75, 0.95),
        (0.75, 0.9),
        (0.8, 1.0),
        FABRIC,
    ),
    c(
        "reading_chair",
        Floor,
        (0.7, 0.85),
        (0.75, 0.9),
        (0.95, 1.1),
        FABRIC,
    ),
    c(
        "ottoman",
        Floor,
        (0.45, 0.7),
        (0.45, 0.6),
        (0.4, 0.45),
        FABRIC,
    ),
    c("bench", Floor, (1.0, 1.5), (0.35, 0.45), (0.42, 0.48), WOOD),
    c(
        "dining_chair",
        Floor,
        (0.42, 0.5),
        (0.45, 0.55),
        (0.8, 0.95),
        WOOD,
    ),
    c(
        "office_chair",
        Floor,
        (0.6, 0.7),
        (0.6, 0.7),
        (0.95, 1.2),
        METAL,
    ),
    c(
        "bar_stool",
        Floor,
        (0.38, 0.45),
        (0.38, 0.45),
        (0.65, 0.8),
        METAL,
    ),
    c(
        "kids_chair",
        Floor,
        (0.3, 0.38),
        (0.3, 0.38),
        (0.5, 0.6),
        PLASTIC,
    ),
    c("beanbag", Floor, (0.7, 0.9), (0.7, 0.9), (0.6, 0.8), FABRIC),
    // Floor: tables and work surfaces.
    c(
        "coffee_table",
        Floor,
        (0.9, 1.3),
        (0.5, 0.7),
        (0.38, 0.46),
        MIXED,
    ),
    c(
        "side_table",
        Floor,
        (0.4, 0.55),
        (0.4, 0.55),
        (0.5, 0.6),
        MIXED,
    ),
    c(
        "dining_table",
        Floor,
        (1.4, 2.0),
        (0.8, 1.0),
        (0.73, 0.77),
        WOOD,
    ),
    c("desk", Floor, (1.1, 1.6), (0.6, 0.75), (0.72, 0.76), WOOD),
    c(
        "writing_desk",
        Floor,
        (0.9, 1.2),
        (0.5, 0.6),
        (0.74, 0.78),
        WOOD,
    ),
    c(
        "drafting_table",
        Floor,
        (1.0, 1.3),
        (0.7, 0.85),
        (0.85, 0.95),
        MIXED,
    ),
    c(
        "play_table",
        Floor,
        (0.7, 0.9),
        (0.55, 0.7),
        (0.45, 0.52),
        PLASTIC,
    ),
    c(
        "reading_table",
        Floor,
        (1.2, 1.8),
        (0.7, 0.9),
        (0.73, 0.77),
        WOOD,
    ),
    c(
        "console_table",
        Floor,
        (0.9, 1.3),
        (0.3, 0.4),
        (0.75, 0.82),
        MIXED,
    ),
    c(
        "tv_stand",
        Floor,
        (1.2, 1.8),
        (0.38, 0.48),
        (0.45, 0.6),
        WOOD,
    ),
    // Floor: kitchen and bathroom fixtures.
    c(
        "kitchen_counter",
        Floor,
        (1.2, 2.4),
        (0.6, 0.65),
        (0.88, 0.92),
        MIXED,
    ),
    c(
        "kitchen_island",
        Floor,
        (1.2, 1.8),
        (0.8, 1.0),
        (0.88, 0.92),
        MIXED,
    ),
    c(
        "refrigerator",
        Floor,
        (0.6, 0.9),
        (0.65, 0.75),
        (1.75, 1.9),
        METAL,
    ),
    c(
        "stove",
        Floor,
        (0.6, 0.76),
        (0.6, 0.65),
        (0.88, 0.92),
        METAL,
    ),
    c(
        "dishwasher",
        Floor,
        (0.45, 0.6),
        (0.58, 0.62),
        (0.82, 0.87),
        METAL,
    ),
    c(
        "sink_cabinet",
        Floor,
        (0.8, 1.2),
        (0.55, 0.62),
        (0.85, 0.9),
        CERAMIC,
    ),
    c(
        "pantry_cabinet",
        Floor,
        (0.5, 0.8),
        (0.55, 0.62),
        (1.9, 2.1),
        WOOD,
    ),
    c(
        "bathtub",
        Floor,
        (1.5, 1.8),
        (0.7, 0.8),
        (0.55, 0.62),
        CERAMIC,
    ),
    c(
        "shower_stall",
        Floor,
        (0.8, 1.0),
        (0.8, 1.0),
        (1.95, 2.1),
        CERAMIC,
    ),
    c(
        "toilet",
        Floor,
        (0.36, 0.42),
        (0.62, 0.72),
        (0.7, 0.8),
        CERAMIC,
    ),
    c(
        "vanity",
        Floor,
        (0.6, 1.2),
        (0.45, 0.55),
        (0.8, 0.88),
        CERAMIC,
    ),
    c(
        "laundry_basket",
        Floor,
        (0.4, 0.5),
        (0.35, 0.45),
        (0.5, 0.65),
        TEXTILE,
    ),
    c(
        "washing_machine",
        Floor,
        (0.58, 0.62),
        (0.55, 0.65),
        (0.82, 0.87),
        METAL,
    ),
    // Floor: decor and the rest.
    c("rug", Floor, (1.6, 3.0), (1.2, 2.2), (0.01, 0.02), TEXTILE),
    c(
        "bath_mat",
        Floor,
        (0.6, 0.9),
        (0.4, 0.6),
        (0.01, 0.015),
        TEXTILE,
    ),
    c(
        "floor_lamp",
        Floor,
        (0.3, 0.45),
        (0.3, 0.45),
        (1.5, 1.8),
        METAL,
    ),
    c(
        "potted_plant",
        Floor,
        (0.35, 0.6),
        (0.35, 0.6),
        (0.6, 1.5),
        CERAMIC,
    ),
    c(
        "trash_can",
        Floor,
        (0.25, 0.35),
        (0.25, 0.35),
        (0.35, 0.6),
        METAL,
    ),
    c("piano", Floor, (1.4, 1.55), (0.55, 0.65), (1.1, 1.3), WOOD),
    c("easel", Floor, (0.6, 0.8), (0.55, 0.7), (1.5, 1.8), WOOD),
    c(
        "coat_stand",
        Floor,
        (0.4, 0.5),
        (0.4, 0.5),
        (1.7, 1.85),
        METAL,
    ),
    c(
        "room_divider",
        Floor,
        (1.2, 1.8),
        (0.03, 0.05),
        (1.6, 1.8),
        MIXED,
    ),
    // Wall-mounted.
    c(
        "painting",
        Wall,
        (0.5, 1.2),
        (0.03, 0.05),
        (0.4, 0.9),
        PAPER,
    ),
    c(
        "mirror",
        Wall,
        (0.5, 0.9),
        (0.02, 0.04),
        (0.6, 1.0),
        CERAMIC,
    ),
    c(
        "wall_shelf",
        Wall,
        (0.6, 1.2),
        (0.2, 0.28),
        (0.04, 0.3),
        WOOD,
    ),
    c("wall_tv", Wall, (1.0, 1.6), (0.05, 0.08), (0.6, 0.9), METAL),
    c(
        "wall_clock",
        Wall,
        (0.3, 0.45),
        (0.04, 0.06),
        (0.3, 0.45),
        MIXED,
    ),
    c(
        "wall_cabinet",
        Wall,
        (0.6, 1.2),
        (0.3, 0.36),
        (0.6, 0.75),
        WOOD,
    ),
    c(
        "towel_rack",
        Wall,
        (0.5, 0.7),
        (0.1, 0.15),
        (0.08, 0.5),
        METAL,
    ),
    c(
        "whiteboard",
        Wall,
        (0.9, 1.5),
        (0.02, 0.03),
        (0.6, 1.0),
        METAL,
    ),
    c(
        "coat_hooks",
        Wall,
        (0.5, 0.9),
        (0.06, 0.1),
        (0.1, 0.15),
        METAL,
    ),
    c(
        "range_hood",
        Wall,
        (0.6, 0.9),
        (0.45, 0.5),
        (0.4, 0.6),
        METAL,
    ),
    // Ceiling-hung.
    c(
        "pendant_lamp",
        Ceiling,
        (0.3, 0.5),
        (0.3, 0.5),
        (0.4, 0.8),
        METAL,
    ),
    c(
        "chandelier",
        Ceiling,
        (0.6, 0.9),
        (0.6, 0.9),
        (0.5, 0.8),
        METAL,
    ),
    c(
        "ceiling_fan",
        Ceiling,
        (1.0, 1.3),
        (1.0, 1.3),
        (0.3, 0.45),
        METAL,
    ),
    c(
        "ceiling_light",
        Ceiling,
        (0.35, 0.6),
        (0.35, 0.6),
        (0.1, 0.18),
        CERAMIC,
    ),
    // Tabletop.
    c(
        "table_lamp",
        Tabletop,
        (0.25, 0.4),
        (0.25, 0.4),
        (0.4, 0.6),
        CERAMIC,
    ),
    c(
        "desk_lamp",
        Tabletop,
        (0.15, 0.22),
        (0.15, 0.22),
        (0.35, 0.5),
        METAL,
    ),
    c(
        "vase",
        Tabletop,
        (0.12, 0.25),
        (0.12, 0.25),
        (0.2, 0.45),
        CERAMIC,
    ),
    c(
        "monitor",
        Tabletop,
        (0.5, 0.7),
        (0.18, 0.25),
        (0.38, 0.5),
        METAL,
    ),
    c(
        "laptop",
        Tabletop,
        (0.3, 0.36),
        (0.22, 0.25),
        (0.02, 0.03),
        METAL,
    ),
    c(
        "book_stack",
        Tabletop,
        (0.2, 0.3),
        (0.15, 0.22),
        (0.08, 0.2),
        PAPER,
    ),
    c(
        "alarm_clock",
        Tabletop,
        (0.1, 0.16),
        (0.06, 0.1),
        (0.08, 0.12),
        PLASTIC,
    ),
    c(
        "fruit_bowl",
        Tabletop,
        (0.25, 0.35),
        (0.25, 0.35),
        (0.1, 0.15),
        CERAMIC,
    ),
    c(
        "candle_holder",
        Tabletop,
        (0.08, 0.15),
        (0.08, 0.15),
        (0.1, 0.3),
        METAL,
    ),
    c(
        "picture_frame",
        Tabletop,
        (0.15, 0.25),
        (0.05, 0.1),
        (0.18, 0.3),
        MIXED,
    ),
    c(
        "small_plant",
        Tabletop,
        (0.12, 0.25),
        (0.12, 0.25),
        (0.15, 0.35),
        CERAMIC,
    ),
    c(
        "microwave",
        Tabletop,
        (0.45, 0.55),
        (0.35, 0.42),
        (0.26, 0.32),
        METAL,
    ),
    c(
        "coffee_maker",
        Tabletop,
        (0.2, 0.3),
        (0.25, 0.35),
        (0.3, 0.4),
        METAL,
    ),
    c(
        "toaster",
        Tabletop,
        (0.25, 0.32),
        (0.15, 0.2),
        (0.18, 0.22),
        METAL,
    ),
    c(
        "soap_dispenser",
        Tabletop,
        (0.06, 0.09),
        (0.06, 0.09),
        (0.15, 0.2),
        CERAMIC,
    ),
    c(
        "keyboard",
        Tabletop,
        (0.4, 0.46),
        (0.12, 0.15),
        (0.02, 0.04),
        PLASTIC,
    ),
    c("tv", Tabletop, (1.0, 1.4), (0.2, 0.3), (0.6, 0.85), METAL),
    c(
        "speaker",
        Tabletop,
        (0.15, 0.25),
        (0.15, 0.22),
        (0.25, 0.35),
        MIXED,
    ),
];

/// The category with this name.
#[must_use]
pub fn category(name: &str) -> Option<&'static Category> {
    CATALOGUE.iter().find(|c| c.name == name)
}

impl Category {
    /// Whether objects of this category are flat enough to walk and stand on (rugs, mats).
    #[must_use]
    pub fn is_flat(&self) -> bool {
        self.height.1 <= FLAT_HEIGHT
    }
}

/// Objects no taller than this (metres) lie flat on the floor; others may stand on them.
pub const FLAT_HEIGHT: f64 = 0.03;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_covers_every_mount_with_sane_ranges() {
        assert!(CATALOGUE.len() >= 60, "{} categories", CATALOGUE.len());
        for mount in [Floor, Wall, Ceiling, Tabletop] {
            assert!(
                CATALOGUE.iter().filter(|c| c.mount == mount).count() >= 4,
                "{mount:?}"
            );
        }
        let mut names = std::collections::HashSet::new();
        for c in CATALOGUE {
            assert!(names.insert(c.name), "duplicate {}", c.name);
            for (lo, hi) in [c.length, c.width, c.height] {
                assert!(lo > 0.0 && lo <= hi && hi <= 3.0, "{}: {lo}..{hi}", c.name);
            }
            assert!(!c.materials.is_empty());
            // Names must survive `category_of` (a trailing `_<digits>` would be eaten).
            assert_eq!(
                crate::scene_graph::category_of(&format!("{}_1", c.name)),
                c.name
            );
        }
    }
}
