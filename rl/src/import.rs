//! Importing rooms from `MetaSpatial`'s Hugging Face dataset (parquet) and from folders of `IDesign`
//! scene-graph JSON files.
//!
//! `MetaSpatial`'s rows have three columns: `problem` (the prompt; its tail is the scene graph,
//! `json.dumps(room, indent=2)` with positions removed), `answer` (a JSON string with
//! `room_name`, `user_preference` and `size_of_room`) and `images` (a list of
//! `struct<bytes: binary, path: string>`, the PNG of the empty room). Each row becomes one of
//! our rooms through the environment's scene-graph import, and its first image is kept.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use metaspatial_env::Room;
use metaspatial_env::data::dataset::check_room;
use metaspatial_env::scene_graph::room_from_value;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// One imported room and its picture.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The room.
    pub room: Room,
    /// PNG bytes of the room image, when the row has one.
    pub image: Option<Vec<u8>>,
}

/// The scene graph at the tail of a `MetaSpatial` prompt: the earliest `[` from which the rest of
/// the text is exactly one JSON list.
#[must_use]
pub fn scene_graph_of(problem: &str) -> Option<Value> {
    problem
        .char_indices()
        .filter(|&(_, c)| c == '[')
        .find_map(|(i, _)| {
            serde_json::from_str::<Value>(&problem[i..])
                .ok()
                .filter(Value::is_array)
        })
}

fn string_at(column: &ArrayRef, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    if let Some(a) = column.as_string_opt::<i32>() {
        return Some(a.value(row).to_owned());
    }
    column
        .as_string_opt::<i64>()
        .map(|a| a.value(row).to_owned())
}

/// The `bytes` of the first struct in the row's `images` list.
fn first_image(column: &ArrayRef, row: usize) -> Result<Option<Vec<u8>>, String> {
    if column.is_null(row) {
        return Ok(None);
    }
    let list = column
        .as_list_opt::<i32>()
        .ok_or("column `images` is not a list")?;
    let items = list.value(row);
    if items.is_empty() {
        return Ok(None);
    }
    let items = items
        .as_struct_opt()
        .ok_or("column `images`: items are not structs")?;
    let bytes = items
        .column_by_name("bytes")
        .ok_or("column `images`: items have no `bytes` field")?;
    if bytes.is_null(0) {
        return Ok(None);
    }
    if let Some(b) = bytes.as_binary_opt::<i32>() {
        return Ok(Some(b.value(0).to_vec()));
    }
    bytes
        .as_binary_opt::<i64>()
        .map(|b| Some(b.value(0).to_vec()))
        .ok_or_else(|| "column `images`: field `bytes` is not binary".to_owned())
}

fn column<'a>(batch: &'a RecordBatch, name: &str, path: &Path) -> anyhow::Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| anyhow!("{}: no column `{name}`", path.display()))
}

/// Reads every row of a `MetaSpatial` parquet file.
pub fn read_metaspatial(path: &Path) -> anyhow::Result<Vec<Imported>> {
    if path.is_dir() {
        bail!("{}: a directory, not a parquet file", path.display());
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a parquet file", path.display()))?
        .build()?;
    let mut out = Vec::new();
    let mut row_base = 0;
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: unreadable row group", path.display()))?;
        let (problem, answer) = (
            column(&batch, "problem", path)?,
            column(&batch, "answer", path)?,
        );
        let images = batch.column_by_name("images");
        for row in 0..batch.num_rows() {
            let n = row_base + row;
            let at = format!("{} row {n}", path.display());
            let problem = string_at(problem, row)
                .ok_or_else(|| anyhow!("{at}: column `problem` is null or not text"))?;
            let answer = string_at(answer, row)
                .ok_or_else(|| anyhow!("{at}: column `answer` is null or not text"))?;
            let graph = scene_graph_of(&problem).ok_or_else(|| {
                anyhow!("{at}: column `problem` does not end with a scene-graph JSON list")
            })?;
            let info: Value = serde_json::from_str(&answer).map_err(|e| {
                anyhow!(
                    "{at}: column `answer` is not JSON (column {}): {e}",
                    e.column()
                )
            })?;
            let doc = serde_json::json!({"scene_graph": graph, "room": info});
            let room = room_from_value(&doc, &at)?;
            check_room(&room).map_err(|e| anyhow!("{at}: {e}"))?;
            let image = match images {
                Some(c) => first_image(c, row).map_err(|e| anyhow!("{at}: {e}"))?,
                None => None,
            };
            out.push(Imported { room, image });
        }
        row_base += batch.num_rows();
    }
    Ok(out)
}

/// Reads every `*.json` scene graph in a folder (sorted by name; room id = file stem unless the
/// document names it).
pub fn read_idesign(dir: &Path) -> anyhow::Result<Vec<Imported>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    if files.is_empty() {
        bail!("{}: no .json scene graphs", dir.display());
    }
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            let origin = p.display().to_string();
            let room = metaspatial_env::load_room(&text, &origin)?;
            check_room(&room).map_err(|e| anyhow!("{origin}: {e}"))?;
            Ok(Imported { room, image: None })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the asserted values are exact
mod tests {
    use std::sync::Arc;

    use arrow_array::StringArray;
    use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder, StructBuilder};
    use arrow_schema::{DataType, Field, Fields};
    use parquet::arrow::ArrowWriter;

    use super::*;

    const GRAPH: &str = r#"[
  {"new_object_id": "sofa_1", "style": "modern", "material": "linen",
   "size_in_meters": {"length": 2.0, "width": 0.9, "height": 0.8}, "is_on_the_floor": true,
   "facing": "north_wall",
   "placement": {"room_layout_elements": [{"layout_element_id": "south_wall", "preposition": "on"}],
                 "objects_in_room": []}},
  {"new_object_id": "coffee_table_1", "size_in_meters": {"length": 1.0, "width": 0.6, "height": 0.4},
   "is_on_the_floor": true, "facing": "sofa_1",
   "placement": {"room_layout_elements": [],
                 "objects_in_room": [{"object_id": "sofa_1", "preposition": "in front", "is_adjacent": false}]}},
  {"new_object_id": "south_wall", "size_in_meters": {"length": 5.0, "width": 0.0, "height": 3.0}},
  {"new_object_id": "east_wall", "size_in_meters": {"length": 4.0, "width": 0.0, "height": 3.0}}
]"#;

    fn write_parquet(path: &Path, rows: &[(String, String, Vec<u8>)]) {
        let item_fields = Fields::from(vec![
            Field::new("bytes", DataType::Binary, true),
            Field::new("path", DataType::Utf8, true),
        ]);
        let items = StructBuilder::new(
            item_fields,
            vec![
                Box::new(BinaryBuilder::new()),
                Box::new(StringBuilder::new()),
            ],
        );
        let mut images = ListBuilder::new(items);
        for (_, _, png) in rows {
            let items = images.values();
            items
                .field_builder::<BinaryBuilder>(0)
                .unwrap()
                .append_value(png);
            items
                .field_builder::<StringBuilder>(1)
                .unwrap()
                .append_null();
            items.append(true);
            images.append(true);
        }
        let images = images.finish();
        let problem: StringArray = rows.iter().map(|r| Some(r.0.clone())).collect();
        let answer: StringArray = rows.iter().map(|r| Some(r.1.clone())).collect();
        let batch = RecordBatch::try_from_iter([
            ("images", Arc::new(images) as ArrayRef),
            ("problem", Arc::new(problem) as ArrayRef),
            ("answer", Arc::new(answer) as ArrayRef),
        ])
        .unwrap();
        let mut writer =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("msrl-import-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn prompt(graph: &str) -> String {
        format!(
            "<image>\n## Task Description\n- Room Layout Elements: ['south_wall', 'north_wall']\n## Input JSON Data:\n{graph}"
        )
    }

    #[test]
    fn metaspatial_rows_become_rooms_with_their_images() {
        let dir = temp("ok");
        let path = dir.join("train.parquet");
        let answer = r#"{"room_name": "room_7", "user_preference": "A calm lounge.", "size_of_room": {"x": 5.0, "y": 4.0, "z": 3.0}}"#;
        write_parquet(
            &path,
            &[(prompt(GRAPH), answer.to_owned(), b"\x89PNG fake".to_vec())],
        );
        let rows = read_metaspatial(&path).unwrap();
        assert_eq!(rows.len(), 1);
        let room = &rows[0].room;
        assert_eq!(room.id, "room_7");
        assert_eq!(room.description, "A calm lounge.");
        assert_eq!(room.objects.len(), 2);
        assert_eq!(room.objects[1].facing.as_deref(), Some("sofa_1"));
        assert_eq!(rows[0].image.as_deref(), Some(&b"\x89PNG fake"[..]));
    }

    #[test]
    fn bad_rows_are_named_by_row_and_column() {
        let dir = temp("bad");
        let path = dir.join("bad.parquet");
        let good = r#"{"room_name": "a", "user_preference": "", "size_of_room": {"x": 5.0, "y": 4.0, "z": 3.0}}"#;
        let zero = GRAPH.replacen("\"height\": 0.4", "\"height\": 0.0", 1);
        write_parquet(
            &path,
            &[
                (prompt(GRAPH), good.to_owned(), Vec::new()),
                (prompt(&zero), good.replace("\"a\"", "\"b\""), Vec::new()),
            ],
        );
        let e = format!("{:#}", read_metaspatial(&path).unwrap_err());
        assert!(
            e.contains("row 1") && e.contains("coffee_table_1") && e.contains("size.height"),
            "{e}"
        );
        write_parquet(
            &path,
            &[(prompt(GRAPH), "{not json".to_owned(), Vec::new())],
        );
        let e = format!("{:#}", read_metaspatial(&path).unwrap_err());
        assert!(e.contains("row 0") && e.contains("column `answer`"), "{e}");
        write_parquet(
            &path,
            &[("no graph here".to_owned(), good.to_owned(), Vec::new())],
        );
        let e = format!("{:#}", read_metaspatial(&path).unwrap_err());
        assert!(e.contains("row 0") && e.contains("column `problem`"), "{e}");
    }

    #[test]
    fn idesign_folders_import_in_name_order() {
        let dir = temp("idesign");
        std::fs::write(dir.join("b.json"), GRAPH).unwrap();
        std::fs::write(dir.join("a.json"), GRAPH).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let rows = read_idesign(&dir).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.room.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(rows[0].room.size.length, 5.0);
    }
}
