//! Incremental reading of a JSONL file that another process may still be appending to.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One complete line of a JSONL file.
#[derive(Debug)]
pub(crate) struct Line {
    /// 1-based line number in the file.
    pub number: usize,
    /// Byte offset of its first byte.
    pub offset: u64,
    /// The line without its newline.
    pub text: Vec<u8>,
}

/// What [`Tail::read_new`] found.
#[derive(Debug, Default)]
pub(crate) struct NewLines {
    /// The file shrank since the last read (rewritten or truncated): everything read before is
    /// stale and `lines` starts again from the top.
    pub reset: bool,
    /// The complete lines appended since the last read.
    pub lines: Vec<Line>,
}

/// Remembers how far a JSONL file has been read, so each refresh reads only what was appended.
///
/// A last line without its newline is still being written: it is left for the next read rather
/// than parsed torn.
#[derive(Debug)]
pub(crate) struct Tail {
    path: PathBuf,
    /// End of the last complete line read.
    offset: u64,
    /// Lines read so far, blank ones included, so errors can name the line.
    lines: usize,
}

impl Tail {
    /// A reader at the start of `path` (which need not exist yet).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            lines: 0,
        }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the complete lines appended since the last call; a missing file has none.
    pub fn read_new(&mut self) -> Result<NewLines> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let reset = self.offset > 0;
                self.offset = 0;
                self.lines = 0;
                return Ok(NewLines {
                    reset,
                    lines: Vec::new(),
                });
            }
            Err(error) => return Err(Error::io(&self.path)(error)),
        };
        let len = file.metadata().map_err(Error::io(&self.path))?.len();
        let mut found = NewLines::default();
        if len < self.offset {
            found.reset = true;
            self.offset = 0;
            self.lines = 0;
        }
        if len == self.offset {
            return Ok(found);
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(Error::io(&self.path))?;
        let mut bytes = Vec::with_capacity((len - self.offset) as usize);
        file.read_to_end(&mut bytes)
            .map_err(Error::io(&self.path))?;
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Ok(found);
        };
        let mut start = 0;
        for (i, &byte) in bytes[..=end].iter().enumerate() {
            if byte != b'\n' {
                continue;
            }
            self.lines += 1;
            let mut text = &bytes[start..i];
            if text.last() == Some(&b'\r') {
                text = &text[..text.len() - 1];
            }
            if !text.iter().all(u8::is_ascii_whitespace) {
                found.lines.push(Line {
                    number: self.lines,
                    offset: self.offset + start as u64,
                    text: text.to_vec(),
                });
            }
            start = i + 1;
        }
        self.offset += end as u64 + 1;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, "{\"a\":1}\n\n{\"a\":2}\n{\"a\"").unwrap();
        let mut tail = Tail::new(&path);
        let first = tail.read_new().unwrap();
        let texts: Vec<_> = first.lines.iter().map(|l| l.text.clone()).collect();
        assert_eq!(texts, [b"{\"a\":1}".to_vec(), b"{\"a\":2}".to_vec()]);
        assert_eq!(first.lines[1].number, 3);
        assert_eq!(first.lines[1].offset, 9);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b":3}\n").unwrap();
        let second = tail.read_new().unwrap();
        assert!(!second.reset);
        assert_eq!(second.lines.len(), 1);
        assert_eq!(second.lines[0].text, b"{\"a\":3}");
        assert_eq!(second.lines[0].number, 4);
    }

    #[test]
    fn a_shrunk_file_is_read_again_from_the_top() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, "1\n2\n").unwrap();
        let mut tail = Tail::new(&path);
        assert_eq!(tail.read_new().unwrap().lines.len(), 2);
        std::fs::write(&path, "3\n").unwrap();
        let again = tail.read_new().unwrap();
        assert!(again.reset);
        assert_eq!(again.lines[0].text, b"3");
        assert_eq!(again.lines[0].number, 1);
    }
}
