//! Line input for the CLI: one message per line from a file or stdin, read as bytes so that an
//! invalid UTF-8 line is reported by number instead of aborting the whole input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

/// One input line: its 1-based number and its text, or why it cannot be used.
#[derive(Debug)]
pub struct Line {
    pub number: usize,
    pub text: Result<String, LineError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    InvalidUtf8 { bytes: usize },
    Empty,
}

impl LineError {
    pub fn describe(self) -> String {
        match self {
            LineError::InvalidUtf8 { bytes } => format!("invalid UTF-8 ({bytes} bytes)"),
            LineError::Empty => "empty message".to_string(),
        }
    }
}

/// Opens `file`, or stdin when `None`.
pub fn open(file: Option<&Path>) -> Result<Box<dyn BufRead>> {
    Ok(match file {
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            Box::new(BufReader::new(file))
        }
        None => Box::new(BufReader::new(io::stdin())),
    })
}

/// Reads every byte of `file` (or stdin).
pub fn read_all(file: Option<&Path>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open(file)?
        .read_to_end(&mut bytes)
        .context("cannot read the input")?;
    Ok(bytes)
}

/// Calls `handle` for every line of `reader` (without its `\n` / `\r\n`).
pub fn for_each_line(
    mut reader: impl BufRead,
    mut handle: impl FnMut(Line) -> Result<()>,
) -> Result<()> {
    let mut buffer = Vec::new();
    for number in 1.. {
        buffer.clear();
        if reader
            .read_until(b'\n', &mut buffer)
            .context("cannot read the input")?
            == 0
        {
            break;
        }
        handle(Line {
            number,
            text: decode(&buffer),
        })?;
    }
    Ok(())
}

fn decode(raw: &[u8]) -> Result<String, LineError> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = std::str::from_utf8(raw).map_err(|_| LineError::InvalidUtf8 { bytes: raw.len() })?;
    if text.trim().is_empty() {
        return Err(LineError::Empty);
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> Vec<(usize, Result<String, LineError>)> {
        let mut lines = Vec::new();
        for_each_line(input, |line| {
            lines.push((line.number, line.text));
            Ok(())
        })
        .unwrap();
        lines
    }

    #[test]
    fn splits_lines_and_flags_bad_ones() {
        let lines = collect(b"hello\r\n\xff\xfe\n\nlast");
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], (1, Ok("hello".to_string())));
        assert_eq!(lines[1], (2, Err(LineError::InvalidUtf8 { bytes: 2 })));
        assert_eq!(lines[2], (3, Err(LineError::Empty)));
        assert_eq!(lines[3], (4, Ok("last".to_string())));
    }
}
