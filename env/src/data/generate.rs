//! Procedural rooms: a room type, a furniture list drawn from its template, sizes from the
//! catalogue, a room big enough for it, relations and facings as a designer states them, and a
//! description.
//!
//! Room `index` under `seed` depends on nothing else: it is drawn from its own random stream
//! ([`Rng::derive`]), so datasets of different sizes share their first rooms and rooms can be
//! generated in parallel.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::room::{
    LayoutElement, ObjectPreposition, ObjectRelation, ObjectSpec, Placement, Room, RoomPreposition,
    RoomRelation, RoomSize, Size,
};

use super::catalogue::{Category, Mount, category};
use super::describe::{STYLES, describe};
use super::rng::Rng;
use super::templates::{Face, Item, ROOM_TYPES, Rel, RoomType, SURFACES, around, generic_fillers};

/// Version of the generator; bump it whenever the rooms for a seed change.
pub const GENERATOR_VERSION: &str = "1.0.0";

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Master seed.
    pub seed: u64,
    /// Fewest objects per room (at least 1).
    pub min_objects: usize,
    /// Most objects per room.
    pub max_objects: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            min_objects: 4,
            max_objects: 30,
        }
    }
}

/// Fraction of the floor that standing furniture may cover before the room is enlarged.
const MAX_FLOOR_COVER: f64 = 0.3;
/// Fraction of the perimeter that furniture against walls may take before enlarging.
const MAX_WALL_RUN: f64 = 0.55;
/// Fraction of a surface's top that tabletop objects may cover.
const MAX_SURFACE_COVER: f64 = 0.5;
/// Attempts at adding fillers before giving up on reaching the object count.
const FILLER_ATTEMPTS: usize = 400;

/// One object decided on, before relations are resolved.
struct Draft {
    item: &'static Item,
    category: &'static Category,
    /// Instance number within its category, from 1.
    k: usize,
    /// The object it stands on, for tabletop items.
    surface: Option<String>,
}

impl Draft {
    fn id(&self) -> String {
        format!("{}_{}", self.category.name, self.k)
    }
}

/// Draws the furniture list of a room.
struct Drafter<'a> {
    rng: &'a mut Rng,
    drafts: Vec<Draft>,
    sizes: HashMap<&'static str, Size>,
    surface_used: HashMap<String, f64>,
    corners: usize,
}

fn round_to(x: f64, step: f64) -> f64 {
    (x / step).round() * step
}

impl Drafter<'_> {
    fn size(&mut self, c: &'static Category) -> Size {
        if let Some(s) = self.sizes.get(c.name) {
            return *s;
        }
        // One size per category and room: a set of dining chairs matches.
        let mut draw = |(lo, hi): (f64, f64)| round_to(self.rng.range(lo, hi), 0.01).clamp(lo, hi);
        let s = Size {
            length: draw(c.length),
            width: draw(c.width),
            height: draw(c.height),
        };
        self.sizes.insert(c.name, s);
        s
    }

    fn count(&self, name: &str) -> usize {
        self.drafts
            .iter()
            .filter(|d| d.category.name == name)
            .count()
    }

    /// The first object relation's target category, which must already be in the room.
    fn requirement(item: &Item) -> Option<&'static str> {
        item.rels.iter().find_map(|r| match *r {
            Rel::Obj(_, c, _) | Rel::Each(_, c, _) | Rel::Flank(c, _) | Rel::Around(c) => Some(c),
            _ => None,
        })
    }

    /// A surface with room for an object of this footprint: `preferred` ids first, else any.
    fn surface_for(&mut self, preferred: Option<String>, footprint: f64) -> Option<String> {
        let mut candidates: Vec<String> = match preferred {
            Some(id) => vec![id],
            None => self
                .drafts
                .iter()
                .filter(|d| SURFACES.contains(&d.category.name))
                .map(Draft::id)
                .collect(),
        };
        self.rng.shuffle(&mut candidates);
        let found = candidates.into_iter().find(|id| {
            let Some(d) = self.drafts.iter().find(|d| &d.id() == id) else {
                return false;
            };
            let s = self.sizes[d.category.name];
            let used = self.surface_used.get(id).copied().unwrap_or(0.0);
            used + footprint <= s.length * s.width * MAX_SURFACE_COVER
        })?;
        *self.surface_used.entry(found.clone()).or_default() += footprint;
        Some(found)
    }

    /// Adds one instance of `item` if its requirements hold; returns whether it did.
    fn add(&mut self, item: &'static Item) -> bool {
        let Some(c) = category(item.category) else {
            return false;
        };
        if Self::requirement(item).is_some_and(|r| self.count(r) == 0) {
            return false;
        }
        let is_corner = item.rels.contains(&Rel::Corner);
        if is_corner && self.corners >= 4 {
            return false;
        }
        let k = self.count(c.name) + 1;
        let mut surface = None;
        if c.mount == Mount::Tabletop {
            let s = self.size(c);
            let preferred = item.rels.iter().find_map(|r| match *r {
                Rel::Obj(ObjectPreposition::On, t, _) => Some(format!("{t}_1")),
                Rel::Each(ObjectPreposition::On, t, _) => Some(if self.count(t) >= k {
                    format!("{t}_{k}")
                } else {
                    format!("{t}_1")
                }),
                _ => None,
            });
            surface = self.surface_for(preferred, s.length * s.width);
            if surface.is_none() {
                return false;
            }
        }
        self.size(c);
        if is_corner {
            self.corners += 1;
        }
        self.drafts.push(Draft {
            item,
            category: c,
            k,
            surface,
        });
        true
    }
}

fn pick_type(rng: &mut Rng, cfg: &GenConfig) -> &'static RoomType {
    let eligible: Vec<&'static RoomType> = ROOM_TYPES
        .iter()
        .filter(|t| t.max_objects >= cfg.min_objects)
        .collect();
    if eligible.is_empty() {
        &ROOM_TYPES[rng.below(ROOM_TYPES.len())]
    } else {
        eligible[rng.below(eligible.len())]
    }
}

/// Room `index` of the dataset with this configuration.
#[must_use]
pub fn generate(cfg: &GenConfig, index: u64) -> Room {
    let mut rng = Rng::derive(cfg.seed, index);
    let t = pick_type(&mut rng, cfg);
    let min = cfg.min_objects.max(1);
    let hi = cfg.max_objects.min(t.max_objects).max(min);
    let n = rng.between(min, hi);
    let style = rng.choose(STYLES).copied().unwrap_or("modern");

    let mut d = Drafter {
        rng: &mut rng,
        drafts: Vec::new(),
        sizes: HashMap::new(),
        surface_used: HashMap::new(),
        corners: 0,
    };
    for item in t.items {
        if d.drafts.len() >= n {
            break;
        }
        if !d.rng.chance(item.chance) {
            continue;
        }
        let count = d
            .rng
            .between(item.count.0, item.count.1)
            .min(n - d.drafts.len());
        for _ in 0..count {
            d.add(item);
        }
    }
    let fillers: Vec<&'static Item> = t.fillers.iter().chain(generic_fillers()).collect();
    for _ in 0..FILLER_ATTEMPTS {
        if d.drafts.len() >= n {
            break;
        }
        let item = fillers[d.rng.below(fillers.len())];
        d.add(item);
    }
    let Drafter { drafts, sizes, .. } = d;

    let size = room_size(&mut rng, t, &drafts, &sizes);
    let objects = resolve(&mut rng, &drafts, &sizes, size, style);
    let description = describe(&mut rng, t.words, style, size, &objects);
    Room {
        id: format!("{}_{index:06}", t.name),
        description,
        size,
        objects,
        openings: Vec::new(),
    }
}

/// A room of the type's size, enlarged until the furniture fits comfortably.
fn room_size(
    rng: &mut Rng,
    t: &RoomType,
    drafts: &[Draft],
    sizes: &HashMap<&str, Size>,
) -> RoomSize {
    let mut l = round_to(rng.range(t.length.0, t.length.1), 0.1);
    let mut w = round_to(rng.range(t.width.0, t.width.1), 0.1);
    let mut h = round_to(rng.range(t.height.0, t.height.1), 0.1);
    let floor: Vec<(&Draft, Size)> = drafts
        .iter()
        .filter(|d| d.category.mount == Mount::Floor)
        .map(|d| (d, sizes[d.category.name]))
        .collect();
    let cover: f64 = floor
        .iter()
        .filter(|(d, _)| !d.category.is_flat())
        .map(|(_, s)| s.length * s.width)
        .sum();
    let run: f64 = floor
        .iter()
        .filter(|(d, _)| {
            d.item
                .rels
                .iter()
                .any(|r| matches!(r, Rel::Wall | Rel::SameWall(_) | Rel::Corner))
        })
        .map(|(_, s)| s.length + 0.1)
        .sum();
    let by_area = (cover / MAX_FLOOR_COVER / (l * w)).sqrt();
    let by_run = run / MAX_WALL_RUN / (2.0 * (l + w));
    let scale = by_area.max(by_run).max(1.0);
    l *= scale;
    w *= scale;
    let longest = floor
        .iter()
        .map(|(_, s)| s.length.max(s.width))
        .fold(0.0, f64::max);
    let tallest = drafts
        .iter()
        .map(|d| sizes[d.category.name].height)
        .fold(0.0, f64::max);
    l = l.max(longest + 0.6);
    w = w.max(longest + 0.6);
    h = h.max(tallest + 0.4);
    // Round up to the decimetre so the room never shrinks below what was computed.
    let up = |x: f64| (x * 10.0 - 1e-9).ceil() / 10.0;
    RoomSize {
        length: up(l),
        width: up(w),
        height: up(h),
    }
}

const fn opposite(wall: LayoutElement) -> LayoutElement {
    match wall {
        LayoutElement::SouthWall => LayoutElement::NorthWall,
        LayoutElement::NorthWall => LayoutElement::SouthWall,
        LayoutElement::EastWall => LayoutElement::WestWall,
        LayoutElement::WestWall => LayoutElement::EastWall,
        other => other,
    }
}

/// Wall usage while relations are resolved.
struct Walls {
    length: [f64; 4],
    floor_used: [f64; 4],
    mounted_used: [f64; 4],
    corners: Vec<(LayoutElement, LayoutElement)>,
}

impl Walls {
    fn new(size: RoomSize) -> Self {
        use LayoutElement::{EastWall, NorthWall, SouthWall, WestWall};
        Self {
            // Order of `LayoutElement::WALLS`: south, north, east, west.
            length: [size.length, size.length, size.width, size.width],
            floor_used: [0.0; 4],
            mounted_used: [0.0; 4],
            corners: vec![
                (SouthWall, WestWall),
                (SouthWall, EastWall),
                (NorthWall, EastWall),
                (NorthWall, WestWall),
            ],
        }
    }

    fn index(wall: LayoutElement) -> usize {
        LayoutElement::WALLS
            .iter()
            .position(|&w| w == wall)
            .unwrap_or(0)
    }

    fn take(&mut self, wall: LayoutElement, run: f64, floor: bool) {
        let used = if floor {
            &mut self.floor_used
        } else {
            &mut self.mounted_used
        };
        used[Self::index(wall)] += run;
    }

    /// A wall with room for `run` metres, or `None` when none has.
    fn pick(&mut self, rng: &mut Rng, run: f64, floor: bool) -> Option<LayoutElement> {
        let used = if floor {
            self.floor_used
        } else {
            self.mounted_used
        };
        let fits: Vec<LayoutElement> = LayoutElement::WALLS
            .into_iter()
            .filter(|&w| used[Self::index(w)] + run + 0.1 <= self.length[Self::index(w)])
            .collect();
        let wall = *rng.choose(&fits)?;
        self.take(wall, run, floor);
        Some(wall)
    }

    /// A free corner, named by one of its two walls.
    fn corner(&mut self, rng: &mut Rng, run: f64) -> Option<LayoutElement> {
        if self.corners.is_empty() {
            return None;
        }
        let (a, b) = self.corners.remove(rng.below(self.corners.len()));
        let wall = if rng.chance(0.5) { a } else { b };
        self.take(wall, run, true);
        Some(wall)
    }
}

/// Resolves every draft into an [`ObjectSpec`] with concrete walls, targets and facings.
fn resolve(
    rng: &mut Rng,
    drafts: &[Draft],
    sizes: &HashMap<&str, Size>,
    size: RoomSize,
    style: &str,
) -> Vec<ObjectSpec> {
    let mut walls = Walls::new(size);
    let mut out: Vec<ObjectSpec> = Vec::with_capacity(drafts.len());
    let first = |out: &[ObjectSpec], cat: &str| {
        out.iter().find(|o| o.category == cat).map(|o| o.id.clone())
    };
    for d in drafts {
        let c = d.category;
        let s = sizes[c.name];
        let floor = c.mount == Mount::Floor;
        let mut room = Vec::new();
        let mut objects = Vec::new();
        let relation = |target: String, preposition, adjacent| ObjectRelation {
            target,
            preposition,
            adjacent,
        };
        for r in d.item.rels {
            match *r {
                Rel::Wall | Rel::SameWall(_) => {
                    let same = match *r {
                        Rel::SameWall(cat) => {
                            out.iter().find(|o| o.category == cat).and_then(|o| {
                                o.placement
                                    .room
                                    .iter()
                                    .find(|x| x.element.is_wall())
                                    .map(|x| x.element)
                            })
                        }
                        _ => None,
                    };
                    let wall = match same {
                        Some(w) => {
                            walls.take(w, s.length, floor);
                            Some(w)
                        }
                        None => walls.pick(rng, s.length, floor),
                    };
                    match wall {
                        Some(w) => room.push(RoomRelation {
                            element: w,
                            preposition: RoomPreposition::On,
                        }),
                        None if floor => {
                            room.push(RoomRelation {
                                element: LayoutElement::Middle,
                                preposition: RoomPreposition::On,
                            });
                        }
                        // Mounted objects need a wall: take the emptiest.
                        None => {
                            let w = LayoutElement::WALLS
                                .into_iter()
                                .max_by(|a, b| {
                                    let free = |x: LayoutElement| {
                                        walls.length[Walls::index(x)]
                                            - walls.mounted_used[Walls::index(x)]
                                    };
                                    free(*a).total_cmp(&free(*b))
                                })
                                .unwrap_or(LayoutElement::NorthWall);
                            walls.take(w, s.length, false);
                            room.push(RoomRelation {
                                element: w,
                                preposition: RoomPreposition::On,
                            });
                        }
                    }
                }
                Rel::Corner => {
                    let element = walls.corner(rng, s.length).unwrap_or(LayoutElement::Middle);
                    let preposition = if element.is_wall() {
                        RoomPreposition::InTheCorner
                    } else {
                        RoomPreposition::On
                    };
                    room.push(RoomRelation {
                        element,
                        preposition,
                    });
                }
                Rel::Middle => room.push(RoomRelation {
                    element: LayoutElement::Middle,
                    preposition: RoomPreposition::On,
                }),
                Rel::Ceiling => room.push(RoomRelation {
                    element: LayoutElement::Ceiling,
                    preposition: RoomPreposition::On,
                }),
                Rel::Obj(ObjectPreposition::On, ..)
                | Rel::Each(ObjectPreposition::On, ..)
                | Rel::OnSurface => {
                    if let Some(t) = &d.surface {
                        objects.push(relation(t.clone(), ObjectPreposition::On, true));
                    }
                }
                Rel::Obj(p, cat, adjacent) => {
                    if let Some(t) = first(&out, cat) {
                        objects.push(relation(t, p, adjacent));
                    }
                }
                Rel::Each(p, cat, adjacent) => {
                    let own = format!("{cat}_{}", d.k);
                    let t = if out.iter().any(|o| o.id == own) {
                        Some(own)
                    } else {
                        first(&out, cat)
                    };
                    if let Some(t) = t {
                        objects.push(relation(t, p, adjacent));
                    }
                }
                Rel::Flank(cat, adjacent) => {
                    if let Some(t) = first(&out, cat) {
                        let p = if d.k % 2 == 1 {
                            ObjectPreposition::LeftOf
                        } else {
                            ObjectPreposition::RightOf
                        };
                        objects.push(relation(t, p, adjacent));
                    }
                }
                Rel::Around(cat) => {
                    if let Some(t) = first(&out, cat) {
                        objects.push(relation(t, around(d.k), true));
                    }
                }
            }
        }
        // A mounted object always names its wall or the ceiling.
        if c.mount == Mount::Wall && !room.iter().any(|r| r.element.is_wall()) {
            let w = walls
                .pick(rng, s.length, false)
                .unwrap_or(LayoutElement::NorthWall);
            room.push(RoomRelation {
                element: w,
                preposition: RoomPreposition::On,
            });
        }
        if c.mount == Mount::Ceiling && !room.iter().any(|r| r.element == LayoutElement::Ceiling) {
            room.push(RoomRelation {
                element: LayoutElement::Ceiling,
                preposition: RoomPreposition::On,
            });
        }
        let facing = match d.item.face {
            Face::Free => None,
            Face::Middle => Some(LayoutElement::Middle.name().to_owned()),
            Face::Away => room
                .iter()
                .find(|r| r.element.is_wall())
                .map(|r| match r.preposition {
                    RoomPreposition::On => opposite(r.element).name().to_owned(),
                    RoomPreposition::InTheCorner => LayoutElement::Middle.name().to_owned(),
                }),
            Face::Target(cat) => first(&out, cat),
            Face::SameAs(cat) => out
                .iter()
                .find(|o| o.category == cat)
                .and_then(|o| o.facing.clone())
                .filter(|f| LayoutElement::from_name(f).is_some_and(LayoutElement::is_wall)),
        };
        let material = rng.choose(c.materials).copied().unwrap_or("wood");
        out.push(ObjectSpec {
            id: d.id(),
            category: c.name.to_owned(),
            size: s,
            on_floor: floor,
            facing,
            placement: Placement { room, objects },
            rotation: None,
            position: None,
            style: Some(style.to_owned()),
            material: Some(material.to_owned()),
            asset: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::catalogue::CATALOGUE;
    use crate::data::templates::ROOM_TYPES;

    #[test]
    fn same_seed_same_room_byte_for_byte() {
        let cfg = GenConfig {
            seed: 42,
            ..GenConfig::default()
        };
        for i in 0..20 {
            let a = serde_json::to_string(&generate(&cfg, i)).unwrap();
            let b = serde_json::to_string(&generate(&cfg, i)).unwrap();
            assert_eq!(a, b);
        }
        let other = GenConfig { seed: 43, ..cfg };
        assert_ne!(generate(&cfg, 0), generate(&other, 0));
    }

    #[test]
    fn rooms_respect_counts_and_reference_only_their_own_objects() {
        let cfg = GenConfig {
            seed: 7,
            min_objects: 4,
            max_objects: 30,
        };
        let mut types = std::collections::HashSet::new();
        for i in 0..200 {
            let room = generate(&cfg, i);
            types.insert(room.id.rsplit_once('_').unwrap().0.to_owned());
            assert!(
                (4..=30).contains(&room.objects.len()),
                "{}: {}",
                room.id,
                room.objects.len()
            );
            for o in &room.objects {
                for r in &o.placement.objects {
                    assert!(
                        room.object(&r.target).is_some(),
                        "{}: {} → {}",
                        room.id,
                        o.id,
                        r.target
                    );
                }
                if let Some(f) = &o.facing {
                    assert!(
                        LayoutElement::from_name(f).is_some() || room.object(f).is_some(),
                        "{f}"
                    );
                }
                assert!(o.size.length > 0.0 && o.size.width > 0.0 && o.size.height > 0.0);
                assert!(
                    o.size.height < room.size.height,
                    "{}: {} too tall",
                    room.id,
                    o.id
                );
            }
            assert!(!room.description.is_empty());
        }
        assert_eq!(types.len(), ROOM_TYPES.len(), "{types:?}");
    }

    #[test]
    fn thirty_object_rooms_can_be_asked_for() {
        let cfg = GenConfig {
            seed: 1,
            min_objects: 30,
            max_objects: 30,
        };
        for i in 0..20 {
            assert_eq!(generate(&cfg, i).objects.len(), 30);
        }
    }

    #[test]
    fn templates_only_name_catalogue_categories_with_fitting_relations() {
        for t in ROOM_TYPES {
            for item in t.items.iter().chain(t.fillers).chain(generic_fillers()) {
                let c = category(item.category)
                    .unwrap_or_else(|| panic!("{}: {}", t.name, item.category));
                let on = item.rels.iter().any(|r| {
                    matches!(
                        r,
                        Rel::OnSurface
                            | Rel::Obj(ObjectPreposition::On, ..)
                            | Rel::Each(ObjectPreposition::On, ..)
                    )
                });
                assert_eq!(
                    on,
                    c.mount == Mount::Tabletop,
                    "{}: {}",
                    t.name,
                    item.category
                );
                for r in item.rels {
                    if let Rel::Obj(_, x, _)
                    | Rel::Each(_, x, _)
                    | Rel::Flank(x, _)
                    | Rel::Around(x)
                    | Rel::SameWall(x) = r
                    {
                        assert!(CATALOGUE.iter().any(|c| c.name == *x), "{x}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_bedroom_reads_like_a_designer_brief() {
        // Find a bedroom with nightstands and check the relations a designer would state.
        let cfg = GenConfig {
            seed: 3,
            min_objects: 8,
            max_objects: 12,
        };
        let room = (0..100)
            .map(|i| generate(&cfg, i))
            .find(|r| r.id.starts_with("bedroom") && r.object("nightstand_2").is_some())
            .unwrap();
        let n1 = room.object("nightstand_1").unwrap();
        let n2 = room.object("nightstand_2").unwrap();
        assert_eq!(
            n1.placement.objects[0].preposition,
            ObjectPreposition::LeftOf
        );
        assert_eq!(
            n2.placement.objects[0].preposition,
            ObjectPreposition::RightOf
        );
        assert!(n1.placement.objects[0].adjacent);
        let bed = room.object("double_bed_1").unwrap();
        let wall = bed.placement.room[0].element;
        assert!(wall.is_wall());
        assert_eq!(bed.facing.as_deref(), Some(opposite(wall).name()));
        assert_eq!(n1.facing, bed.facing);
    }
}
