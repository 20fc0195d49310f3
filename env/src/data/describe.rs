//! Natural-language room descriptions, the way a user would state a brief to a designer.
//!
//! Built from style, colour, material and mood vocabularies plus a sentence or two about the
//! room's anchor pieces (read off the generated relations, so the words never contradict the
//! scene graph) and one preference. Everything is drawn from the room's own random stream.

use crate::room::{LayoutElement, ObjectPreposition, ObjectSpec, RoomPreposition, RoomSize};

use super::rng::Rng;

/// Interior styles.
pub const STYLES: &[&str] = &[
    "modern",
    "Scandinavian",
    "mid-century",
    "industrial",
    "minimalist",
    "bohemian",
    "rustic",
    "Japandi",
    "coastal",
    "traditional",
    "art deco",
    "farmhouse",
    "contemporary",
    "eclectic",
];

/// Colour palettes.
pub const PALETTES: &[&str] = &[
    "soft greys and white",
    "warm beige and terracotta",
    "navy and brass",
    "sage green and cream",
    "black and natural wood",
    "muted pastels",
    "charcoal and mustard",
    "sand and olive",
    "crisp white and pale blue",
    "deep green and walnut",
    "blush pink and grey",
    "earth tones",
];

/// Dominant materials.
pub const MATERIALS: &[&str] = &[
    "light oak",
    "dark walnut",
    "rattan",
    "marble",
    "brushed steel",
    "linen",
    "velvet",
    "reclaimed wood",
    "concrete",
    "leather",
    "glass",
    "bamboo",
];

/// Moods.
pub const MOODS: &[&str] = &[
    "cozy",
    "airy",
    "calm",
    "bright",
    "elegant",
    "playful",
    "serene",
    "welcoming",
    "focused",
    "relaxed",
    "sophisticated",
    "cheerful",
];

/// What the user asks for beyond the furniture list.
pub const PREFERENCES: &[&str] = &[
    "I want plenty of open floor so it never feels cramped.",
    "Please keep a clear path through the middle of the room.",
    "I like things grouped by use, with everything within easy reach.",
    "Symmetry matters to me where it is natural.",
    "Heavy pieces should sit against the walls.",
    "I would like the seating arranged for conversation.",
    "Keep it practical: nothing should block drawers or doors.",
    "I want it to feel uncluttered, with a few pieces that stand out.",
];

/// Words for a category id stem: `tv_stand` → `TV stand`.
#[must_use]
pub fn words(category: &str) -> String {
    category
        .split('_')
        .map(|w| match w {
            "tv" => "TV".to_owned(),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn wall_words(e: LayoutElement) -> &'static str {
    match e {
        LayoutElement::SouthWall => "south wall",
        LayoutElement::NorthWall => "north wall",
        LayoutElement::EastWall => "east wall",
        LayoutElement::WestWall => "west wall",
        LayoutElement::Middle => "middle of the room",
        LayoutElement::Ceiling => "ceiling",
    }
}

fn preposition_words(p: ObjectPreposition) -> &'static str {
    match p {
        ObjectPreposition::On => "on",
        ObjectPreposition::Under => "under",
        ObjectPreposition::LeftOf => "to the left of",
        ObjectPreposition::RightOf => "to the right of",
        ObjectPreposition::InFront => "in front of",
        ObjectPreposition::Behind => "behind",
        ObjectPreposition::Above => "above",
    }
}

/// One clause about an object, from its first relation.
fn clause(o: &ObjectSpec, objects: &[ObjectSpec]) -> Option<String> {
    let name = words(&o.category);
    let target_words = |id: &str| {
        objects
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| words(id), |t| words(&t.category))
    };
    if let Some(r) = o.placement.objects.first() {
        return Some(format!(
            "a {name} {} the {}",
            preposition_words(r.preposition),
            target_words(&r.target)
        ));
    }
    let r = o.placement.room.first()?;
    Some(match (r.preposition, r.element) {
        (RoomPreposition::InTheCorner, e) => {
            format!("a {name} in the corner by the {}", wall_words(e))
        }
        (RoomPreposition::On, LayoutElement::Ceiling) => {
            format!("a {name} hanging from the ceiling")
        }
        (RoomPreposition::On, LayoutElement::Middle) => {
            format!("a {name} in the middle of the room")
        }
        (RoomPreposition::On, e) => format!("a {name} against the {}", wall_words(e)),
    })
}

/// A description of a room of this type, size and contents.
#[must_use]
pub fn describe(
    rng: &mut Rng,
    type_name: &str,
    style: &str,
    size: RoomSize,
    objects: &[ObjectSpec],
) -> String {
    let mood = rng.choose(MOODS).copied().unwrap_or("calm");
    let palette = rng.choose(PALETTES).copied().unwrap_or("earth tones");
    let material = rng.choose(MATERIALS).copied().unwrap_or("oak");
    let article = if starts_with_vowel(mood) { "An" } else { "A" };
    let mut text = format!(
        "{article} {mood} {style} {type_name} of about {:.0} square metres in {palette}, with {material} accents.",
        size.floor_area()
    );
    // Up to three anchor pieces: the first objects, which the templates list biggest first.
    let clauses: Vec<String> = objects
        .iter()
        .filter_map(|o| clause(o, objects))
        .take(3)
        .collect();
    if !clauses.is_empty() {
        let mut sentence = String::from(" I would like ");
        for (i, c) in clauses.iter().enumerate() {
            if i > 0 {
                sentence.push_str(if i + 1 == clauses.len() {
                    " and "
                } else {
                    ", "
                });
            }
            sentence.push_str(c);
        }
        sentence.push('.');
        text.push_str(&sentence);
    }
    if let Some(p) = rng.choose(PREFERENCES) {
        text.push(' ');
        text.push_str(p);
    }
    text
}

fn starts_with_vowel(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_words_read_naturally() {
        assert_eq!(words("tv_stand"), "TV stand");
        assert_eq!(words("coffee_table"), "coffee table");
    }
}
