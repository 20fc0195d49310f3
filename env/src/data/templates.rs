//! Room types and what a designer puts in them, with the relations a designer would state.
//!
//! Each room type lists items in the order a designer decides them (anchor pieces first), each
//! with a probability, an instance count and its relations, plus fillers used to reach the
//! requested number of objects. Relations name other items by category; they resolve to the
//! first instance of that category (or, for [`Rel::Each`], the instance with the same number).

use crate::room::ObjectPreposition::{self, Above, Behind, InFront, LeftOf, On, RightOf, Under};

/// A relation as a template states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rel {
    /// Against a wall the generator picks.
    Wall,
    /// Against the wall of the first instance of this category (or any wall).
    SameWall(&'static str),
    /// In a free corner.
    Corner,
    /// In the middle of the room.
    Middle,
    /// Hanging from the ceiling.
    Ceiling,
    /// `preposition` the first instance of the category, adjacent or not.
    Obj(ObjectPreposition, &'static str, bool),
    /// `preposition` the instance of the category with the same number (or the first).
    Each(ObjectPreposition, &'static str, bool),
    /// Instances alternate left of and right of the category's first instance.
    Flank(&'static str, bool),
    /// Instances go round the category's first instance: front, behind, front, behind, left,
    /// right (chairs round a table).
    Around(&'static str),
    /// On any surface with room to spare (fillers).
    OnSurface,
}

/// What the object's front points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Nothing stated.
    Free,
    /// Away from its wall, into the room.
    Away,
    /// The middle of the room.
    Middle,
    /// The first instance of this category.
    Target(&'static str),
    /// The same wall as the first instance of this category faces.
    SameAs(&'static str),
}

/// One line of a room template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Item {
    /// Catalogue category.
    pub category: &'static str,
    /// Instances: at least, at most.
    pub count: (usize, usize),
    /// Probability that the room has it.
    pub chance: f64,
    /// Its relations.
    pub rels: &'static [Rel],
    /// Its facing.
    pub face: Face,
}

const fn it(
    category: &'static str,
    count: (usize, usize),
    chance: f64,
    rels: &'static [Rel],
    face: Face,
) -> Item {
    Item {
        category,
        count,
        chance,
        rels,
        face,
    }
}

/// A room type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomType {
    /// Id stem, e.g. `living_room`.
    pub name: &'static str,
    /// Words for descriptions.
    pub words: &'static str,
    /// Length range before enlarging to fit the furniture, metres.
    pub length: (f64, f64),
    /// Width range, metres.
    pub width: (f64, f64),
    /// Height range, metres.
    pub height: (f64, f64),
    /// Most objects this type of room is furnished with.
    pub max_objects: usize,
    /// Anchor items, in decision order.
    pub items: &'static [Item],
    /// Items added to reach the object count.
    pub fillers: &'static [Item],
}

/// Categories whose top can hold tabletop objects.
pub const SURFACES: &[&str] = &[
    "nightstand",
    "dresser",
    "chest_of_drawers",
    "storage_cabinet",
    "sideboard",
    "coffee_table",
    "side_table",
    "dining_table",
    "desk",
    "writing_desk",
    "reading_table",
    "console_table",
    "tv_stand",
    "kitchen_counter",
    "kitchen_island",
    "sink_cabinet",
    "vanity",
    "play_table",
    "filing_cabinet",
    "toy_chest",
    "shoe_rack",
];

use Face::{Away, Free, Middle as FaceMiddle, SameAs, Target};
use Rel::{Around, Ceiling, Corner, Each, Flank, Middle, Obj, OnSurface, SameWall, Wall};

const GENERIC_FILLERS: &[Item] = &[
    it("potted_plant", (1, 1), 1.0, &[Corner], FaceMiddle),
    it("painting", (1, 1), 1.0, &[Wall], Away),
    it("wall_shelf", (1, 1), 1.0, &[Wall], Away),
    it("wall_clock", (1, 1), 1.0, &[Wall], Away),
    it("vase", (1, 1), 1.0, &[OnSurface], Free),
    it("small_plant", (1, 1), 1.0, &[OnSurface], Free),
    it("book_stack", (1, 1), 1.0, &[OnSurface], Free),
    it("picture_frame", (1, 1), 1.0, &[OnSurface], Free),
    it("candle_holder", (1, 1), 1.0, &[OnSurface], Free),
];

/// Fillers any room type may use.
#[must_use]
pub fn generic_fillers() -> &'static [Item] {
    GENERIC_FILLERS
}

/// Every room type.
pub const ROOM_TYPES: &[RoomType] = &[
    RoomType {
        name: "bedroom",
        words: "bedroom",
        length: (3.2, 5.0),
        width: (3.0, 4.5),
        height: (2.5, 3.0),
        max_objects: 30,
        items: &[
            it("double_bed", (1, 1), 1.0, &[Wall], Away),
            it(
                "nightstand",
                (2, 2),
                0.9,
                &[Flank("double_bed", true)],
                SameAs("double_bed"),
            ),
            it(
                "table_lamp",
                (1, 2),
                0.7,
                &[Each(On, "nightstand", true)],
                Free,
            ),
            it("wardrobe", (1, 1), 0.8, &[Wall], Away),
            it("rug", (1, 1), 0.5, &[Obj(Under, "double_bed", false)], Free),
            it("dresser", (1, 1), 0.5, &[Wall], Away),
            it(
                "mirror",
                (1, 1),
                0.5,
                &[SameWall("dresser"), Obj(Above, "dresser", false)],
                Away,
            ),
            it(
                "painting",
                (1, 1),
                0.6,
                &[SameWall("double_bed"), Obj(Above, "double_bed", false)],
                Away,
            ),
            it(
                "bench",
                (1, 1),
                0.3,
                &[Obj(InFront, "double_bed", true)],
                SameAs("double_bed"),
            ),
            it("armchair", (1, 1), 0.3, &[Corner], FaceMiddle),
            it("ceiling_light", (1, 1), 0.6, &[Ceiling], Free),
        ],
        fillers: &[
            it("chest_of_drawers", (1, 1), 1.0, &[Wall], Away),
            it("laundry_basket", (1, 1), 1.0, &[Corner], Free),
            it("alarm_clock", (1, 1), 1.0, &[OnSurface], Free),
            it("mirror", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "living_room",
        words: "living room",
        length: (4.0, 6.5),
        width: (3.5, 5.5),
        height: (2.6, 3.2),
        max_objects: 30,
        items: &[
            it("tv_stand", (1, 1), 1.0, &[Wall], Away),
            it(
                "sofa",
                (1, 1),
                1.0,
                &[Obj(InFront, "tv_stand", false)],
                Target("tv_stand"),
            ),
            it(
                "coffee_table",
                (1, 1),
                0.9,
                &[Obj(InFront, "sofa", false)],
                Free,
            ),
            it(
                "rug",
                (1, 1),
                0.6,
                &[Obj(Under, "coffee_table", false)],
                Free,
            ),
            it(
                "wall_tv",
                (1, 1),
                0.5,
                &[SameWall("tv_stand"), Obj(Above, "tv_stand", false)],
                Away,
            ),
            it(
                "armchair",
                (1, 2),
                0.7,
                &[Flank("coffee_table", false)],
                Target("coffee_table"),
            ),
            it(
                "side_table",
                (1, 1),
                0.5,
                &[Obj(RightOf, "sofa", true)],
                Free,
            ),
            it(
                "table_lamp",
                (1, 1),
                0.4,
                &[Obj(On, "side_table", true)],
                Free,
            ),
            it(
                "floor_lamp",
                (1, 1),
                0.4,
                &[Obj(LeftOf, "sofa", true)],
                Free,
            ),
            it("bookshelf", (1, 1), 0.5, &[Wall], Away),
            it("potted_plant", (1, 1), 0.5, &[Corner], FaceMiddle),
            it("ceiling_fan", (1, 1), 0.4, &[Ceiling], Free),
        ],
        fillers: &[
            it("console_table", (1, 1), 1.0, &[Wall], Away),
            it("display_cabinet", (1, 1), 1.0, &[Wall], Away),
            it("speaker", (1, 1), 1.0, &[OnSurface], Free),
            it(
                "ottoman",
                (1, 1),
                1.0,
                &[Obj(InFront, "armchair", false)],
                Free,
            ),
        ],
    },
    RoomType {
        name: "kitchen",
        words: "kitchen",
        length: (3.0, 5.0),
        width: (2.6, 4.2),
        height: (2.5, 3.0),
        max_objects: 24,
        items: &[
            it("kitchen_counter", (1, 1), 1.0, &[Wall], Away),
            it(
                "refrigerator",
                (1, 1),
                1.0,
                &[
                    SameWall("kitchen_counter"),
                    Obj(RightOf, "kitchen_counter", true),
                ],
                SameAs("kitchen_counter"),
            ),
            it(
                "stove",
                (1, 1),
                0.9,
                &[
                    SameWall("kitchen_counter"),
                    Obj(LeftOf, "kitchen_counter", true),
                ],
                SameAs("kitchen_counter"),
            ),
            it(
                "range_hood",
                (1, 1),
                0.6,
                &[SameWall("stove"), Obj(Above, "stove", false)],
                Away,
            ),
            it("sink_cabinet", (1, 1), 0.8, &[Wall], Away),
            it(
                "dishwasher",
                (1, 1),
                0.5,
                &[SameWall("sink_cabinet"), Obj(RightOf, "sink_cabinet", true)],
                SameAs("sink_cabinet"),
            ),
            it("kitchen_island", (1, 1), 0.4, &[Middle], Free),
            it(
                "bar_stool",
                (2, 3),
                0.8,
                &[Obj(Behind, "kitchen_island", true)],
                Target("kitchen_island"),
            ),
            it(
                "microwave",
                (1, 1),
                0.7,
                &[Obj(On, "kitchen_counter", true)],
                SameAs("kitchen_counter"),
            ),
            it(
                "coffee_maker",
                (1, 1),
                0.5,
                &[Obj(On, "kitchen_counter", true)],
                SameAs("kitchen_counter"),
            ),
            it(
                "toaster",
                (1, 1),
                0.4,
                &[Obj(On, "kitchen_counter", true)],
                Free,
            ),
            it(
                "wall_cabinet",
                (1, 1),
                0.6,
                &[
                    SameWall("kitchen_counter"),
                    Obj(Above, "kitchen_counter", false),
                ],
                Away,
            ),
            it(
                "pendant_lamp",
                (1, 2),
                0.5,
                &[Ceiling, Obj(Above, "kitchen_island", false)],
                Free,
            ),
            it("trash_can", (1, 1), 0.5, &[Corner], Free),
            it("pantry_cabinet", (1, 1), 0.3, &[Wall], Away),
        ],
        fillers: &[
            it("fruit_bowl", (1, 1), 1.0, &[OnSurface], Free),
            it("wall_cabinet", (1, 1), 1.0, &[Wall], Away),
            it(
                "bar_stool",
                (1, 1),
                1.0,
                &[Obj(Behind, "kitchen_island", true)],
                Target("kitchen_island"),
            ),
        ],
    },
    RoomType {
        name: "dining_room",
        words: "dining room",
        length: (3.5, 5.5),
        width: (3.2, 4.8),
        height: (2.6, 3.1),
        max_objects: 26,
        items: &[
            it("dining_table", (1, 1), 1.0, &[Middle], Free),
            it(
                "dining_chair",
                (4, 6),
                1.0,
                &[Around("dining_table")],
                Target("dining_table"),
            ),
            it(
                "chandelier",
                (1, 1),
                0.7,
                &[Ceiling, Obj(Above, "dining_table", false)],
                Free,
            ),
            it(
                "rug",
                (1, 1),
                0.5,
                &[Obj(Under, "dining_table", false)],
                Free,
            ),
            it("sideboard", (1, 1), 0.8, &[Wall], Away),
            it(
                "painting",
                (1, 1),
                0.6,
                &[SameWall("sideboard"), Obj(Above, "sideboard", false)],
                Away,
            ),
            it("display_cabinet", (1, 1), 0.5, &[Wall], Away),
            it("vase", (1, 1), 0.5, &[Obj(On, "dining_table", true)], Free),
            it(
                "fruit_bowl",
                (1, 1),
                0.4,
                &[Obj(On, "dining_table", true)],
                Free,
            ),
            it(
                "candle_holder",
                (1, 2),
                0.4,
                &[Obj(On, "sideboard", true)],
                Free,
            ),
            it("potted_plant", (1, 1), 0.5, &[Corner], FaceMiddle),
        ],
        fillers: &[
            it("mirror", (1, 1), 1.0, &[Wall], Away),
            it("console_table", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "office",
        words: "home office",
        length: (3.0, 5.0),
        width: (3.0, 4.5),
        height: (2.5, 3.0),
        max_objects: 26,
        items: &[
            it("desk", (1, 1), 1.0, &[Wall], Away),
            it(
                "office_chair",
                (1, 1),
                1.0,
                &[Obj(InFront, "desk", true)],
                Target("desk"),
            ),
            it(
                "monitor",
                (1, 2),
                0.8,
                &[Obj(On, "desk", true)],
                SameAs("desk"),
            ),
            it(
                "keyboard",
                (1, 1),
                0.6,
                &[Obj(On, "desk", true)],
                SameAs("desk"),
            ),
            it("desk_lamp", (1, 1), 0.6, &[Obj(On, "desk", true)], Free),
            it(
                "filing_cabinet",
                (1, 1),
                0.6,
                &[Obj(RightOf, "desk", true)],
                SameAs("desk"),
            ),
            it("bookshelf", (1, 2), 0.7, &[Wall], Away),
            it("whiteboard", (1, 1), 0.5, &[Wall], Away),
            it("storage_cabinet", (1, 1), 0.4, &[Wall], Away),
            it("potted_plant", (1, 1), 0.5, &[Corner], FaceMiddle),
            it("ceiling_light", (1, 1), 0.6, &[Ceiling], Free),
            it("armchair", (1, 1), 0.2, &[Corner], FaceMiddle),
        ],
        fillers: &[
            it("trash_can", (1, 1), 1.0, &[Obj(LeftOf, "desk", true)], Free),
            it("speaker", (1, 1), 1.0, &[OnSurface], Free),
            it("bookshelf", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "study",
        words: "study",
        length: (2.8, 4.2),
        width: (2.6, 4.0),
        height: (2.4, 2.9),
        max_objects: 22,
        items: &[
            it("writing_desk", (1, 1), 1.0, &[Wall], Away),
            it(
                "office_chair",
                (1, 1),
                1.0,
                &[Obj(InFront, "writing_desk", true)],
                Target("writing_desk"),
            ),
            it("bookshelf", (1, 3), 0.9, &[Wall], Away),
            it("reading_chair", (1, 1), 0.7, &[Corner], FaceMiddle),
            it(
                "floor_lamp",
                (1, 1),
                0.5,
                &[Obj(RightOf, "reading_chair", true)],
                Free,
            ),
            it(
                "side_table",
                (1, 1),
                0.5,
                &[Obj(LeftOf, "reading_chair", true)],
                Free,
            ),
            it(
                "desk_lamp",
                (1, 1),
                0.7,
                &[Obj(On, "writing_desk", true)],
                Free,
            ),
            it(
                "laptop",
                (1, 1),
                0.6,
                &[Obj(On, "writing_desk", true)],
                SameAs("writing_desk"),
            ),
            it(
                "wall_shelf",
                (1, 1),
                0.5,
                &[SameWall("writing_desk"), Obj(Above, "writing_desk", false)],
                Away,
            ),
            it("rug", (1, 1), 0.4, &[Middle], Free),
            it("ceiling_light", (1, 1), 0.5, &[Ceiling], Free),
        ],
        fillers: &[
            it("armchair", (1, 1), 1.0, &[Corner], FaceMiddle),
            it("storage_cabinet", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "bathroom",
        words: "bathroom",
        length: (2.2, 3.5),
        width: (1.9, 3.0),
        height: (2.4, 2.8),
        max_objects: 14,
        items: &[
            it("toilet", (1, 1), 1.0, &[Wall], Away),
            it("vanity", (1, 1), 1.0, &[Wall], Away),
            it(
                "mirror",
                (1, 1),
                0.9,
                &[SameWall("vanity"), Obj(Above, "vanity", false)],
                Away,
            ),
            it("bathtub", (1, 1), 0.6, &[Corner], Free),
            it("towel_rack", (1, 1), 0.7, &[Wall], Away),
            it(
                "bath_mat",
                (1, 1),
                0.6,
                &[Obj(InFront, "vanity", true)],
                Free,
            ),
            it(
                "soap_dispenser",
                (1, 1),
                0.7,
                &[Obj(On, "vanity", true)],
                Free,
            ),
            it("laundry_basket", (1, 1), 0.4, &[Corner], Free),
            it("wall_cabinet", (1, 1), 0.4, &[Wall], Away),
            it("ceiling_light", (1, 1), 0.6, &[Ceiling], Free),
        ],
        fillers: &[
            it("trash_can", (1, 1), 1.0, &[Corner], Free),
            it("towel_rack", (1, 1), 1.0, &[Wall], Away),
            it("washing_machine", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "kids_room",
        words: "kids' room",
        length: (3.0, 4.6),
        width: (3.0, 4.2),
        height: (2.5, 2.9),
        max_objects: 28,
        items: &[
            it("single_bed", (1, 1), 1.0, &[Wall], Away),
            it(
                "nightstand",
                (1, 1),
                0.7,
                &[Flank("single_bed", true)],
                SameAs("single_bed"),
            ),
            it("toy_chest", (1, 1), 0.8, &[Wall], Away),
            it("play_table", (1, 1), 0.7, &[Middle], Free),
            it(
                "kids_chair",
                (2, 4),
                0.8,
                &[Around("play_table")],
                Target("play_table"),
            ),
            it("rug", (1, 1), 0.6, &[Obj(Under, "play_table", false)], Free),
            it("bookshelf", (1, 1), 0.6, &[Wall], Away),
            it("beanbag", (1, 1), 0.4, &[Corner], FaceMiddle),
            it("wardrobe", (1, 1), 0.5, &[Wall], Away),
            it(
                "painting",
                (1, 1),
                0.5,
                &[SameWall("single_bed"), Obj(Above, "single_bed", false)],
                Away,
            ),
            it(
                "table_lamp",
                (1, 1),
                0.5,
                &[Obj(On, "nightstand", true)],
                Free,
            ),
            it("ceiling_light", (1, 1), 0.5, &[Ceiling], Free),
        ],
        fillers: &[
            it("easel", (1, 1), 1.0, &[Corner], FaceMiddle),
            it("crib", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "library",
        words: "home library",
        length: (4.0, 7.0),
        width: (3.5, 6.0),
        height: (2.8, 3.5),
        max_objects: 30,
        items: &[
            it("bookshelf", (3, 6), 1.0, &[Wall], Away),
            it("reading_table", (1, 1), 0.9, &[Middle], Free),
            it(
                "dining_chair",
                (2, 4),
                0.9,
                &[Around("reading_table")],
                Target("reading_table"),
            ),
            it("reading_chair", (1, 2), 0.7, &[Corner], FaceMiddle),
            it(
                "floor_lamp",
                (1, 1),
                0.6,
                &[Obj(LeftOf, "reading_chair", true)],
                Free,
            ),
            it(
                "side_table",
                (1, 1),
                0.5,
                &[Obj(RightOf, "reading_chair", true)],
                Free,
            ),
            it(
                "desk_lamp",
                (1, 1),
                0.6,
                &[Obj(On, "reading_table", true)],
                Free,
            ),
            it(
                "book_stack",
                (1, 3),
                0.7,
                &[Obj(On, "reading_table", true)],
                Free,
            ),
            it(
                "rug",
                (1, 1),
                0.5,
                &[Obj(Under, "reading_table", false)],
                Free,
            ),
            it(
                "chandelier",
                (1, 1),
                0.5,
                &[Ceiling, Obj(Above, "reading_table", false)],
                Free,
            ),
            it("display_cabinet", (1, 1), 0.4, &[Wall], Away),
        ],
        fillers: &[
            it("bookshelf", (1, 1), 1.0, &[Wall], Away),
            it(
                "ottoman",
                (1, 1),
                1.0,
                &[Obj(InFront, "reading_chair", false)],
                Free,
            ),
            it("piano", (1, 1), 1.0, &[Wall], Away),
        ],
    },
    RoomType {
        name: "studio",
        words: "studio apartment",
        length: (4.5, 7.0),
        width: (3.5, 5.5),
        height: (2.6, 3.2),
        max_objects: 30,
        items: &[
            it("double_bed", (1, 1), 1.0, &[Wall], Away),
            it(
                "nightstand",
                (1, 1),
                0.8,
                &[Flank("double_bed", true)],
                SameAs("double_bed"),
            ),
            it("sofa", (1, 1), 1.0, &[Wall], Away),
            it(
                "coffee_table",
                (1, 1),
                0.8,
                &[Obj(InFront, "sofa", false)],
                Free,
            ),
            it("kitchen_counter", (1, 1), 0.9, &[Wall], Away),
            it(
                "refrigerator",
                (1, 1),
                0.8,
                &[
                    SameWall("kitchen_counter"),
                    Obj(RightOf, "kitchen_counter", true),
                ],
                SameAs("kitchen_counter"),
            ),
            it("desk", (1, 1), 0.6, &[Wall], Away),
            it(
                "office_chair",
                (1, 1),
                0.6,
                &[Obj(InFront, "desk", true)],
                Target("desk"),
            ),
            it("wardrobe", (1, 1), 0.7, &[Wall], Away),
            it(
                "rug",
                (1, 1),
                0.5,
                &[Obj(Under, "coffee_table", false)],
                Free,
            ),
            it(
                "painting",
                (1, 1),
                0.6,
                &[SameWall("sofa"), Obj(Above, "sofa", false)],
                Away,
            ),
            it("room_divider", (1, 1), 0.2, &[Middle], Free),
            it("ceiling_light", (1, 1), 0.6, &[Ceiling], Free),
        ],
        fillers: &[
            it("shoe_rack", (1, 1), 1.0, &[Wall], Away),
            it("coat_stand", (1, 1), 1.0, &[Corner], Free),
            it(
                "microwave",
                (1, 1),
                1.0,
                &[Obj(On, "kitchen_counter", true)],
                Free,
            ),
        ],
    },
];

/// The room type with this name.
#[must_use]
pub fn room_type(name: &str) -> Option<&'static RoomType> {
    ROOM_TYPES.iter().find(|t| t.name == name)
}

/// The preposition of instance `k` (1-based) going round a table.
#[must_use]
pub fn around(k: usize) -> ObjectPreposition {
    [InFront, Behind, InFront, Behind, LeftOf, RightOf][(k - 1) % 6]
}
