//! Where a value came from: a file, a byte span, and the key it was written under.
//!
//! Layers are merged key by key and policies inherit through `extends`, so by the time a
//! cross-field rule fails, two values may come from two files. Every value therefore keeps
//! its [`Origin`], and an error is reported at the value that was set last. Line and column
//! are computed only when an error is built.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Location, PolicyError};

/// One policy file's text and name, and its place in the layer order.
#[derive(Debug)]
pub(crate) struct Source {
    /// The path, or `<built-in NAME.toml>` for an embedded file.
    pub(crate) name: PathBuf,
    /// The whole file.
    pub(crate) text: String,
    /// 0 for the embedded defaults, increasing for each layer above it.
    pub(crate) layer: usize,
    /// The environment variable that named this file, for `<NAME>_RESILIENCE_CONFIG`.
    pub(crate) via: Option<String>,
}

impl Source {
    /// The 1-based line and column (in characters) of a byte offset.
    pub(crate) fn locate(&self, offset: usize) -> Location {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        Location {
            file: self.name.clone(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Where one key or value was written.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) source: Arc<Source>,
    pub(crate) span: Range<usize>,
    /// The dotted key path it was written under (`policy.db.retry.max_attempts`).
    pub(crate) key: Arc<str>,
}

impl Origin {
    pub(crate) fn new(source: &Arc<Source>, span: Range<usize>, key: impl Into<Arc<str>>) -> Self {
        Origin {
            source: Arc::clone(source),
            span,
            key: key.into(),
        }
    }

    /// Where the value starts.
    pub(crate) fn location(&self) -> Location {
        self.source.locate(self.span.start)
    }

    /// Where the value starts, and the variable that named its file if one did.
    pub(crate) fn describe(&self) -> String {
        match &self.source.via {
            Some(var) => format!("{} ({var})", self.location()),
            None => self.location().to_string(),
        }
    }

    /// The source text of the value, for "got ..." in messages.
    pub(crate) fn text(&self) -> &str {
        self.source.text.get(self.span.clone()).unwrap_or("")
    }

    /// An [`PolicyError::Invalid`] at this origin.
    pub(crate) fn error(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            at: self.location(),
            key: self.key.to_string(),
            message: message.into(),
        }
    }

    /// Whether this value was written after `other` (a later layer, or later in the file).
    pub(crate) fn is_after(&self, other: &Origin) -> bool {
        (self.source.layer, self.span.start) > (other.source.layer, other.span.start)
    }
}

/// A value and where it came from; `origin` is `None` for a schema default.
#[derive(Debug, Clone)]
pub(crate) struct Sourced<T> {
    pub(crate) value: T,
    pub(crate) origin: Option<Origin>,
}

impl<T> Sourced<T> {
    /// Whether this value was written after `other`; schema defaults come first.
    pub(crate) fn is_after<U>(&self, other: &Sourced<U>) -> bool {
        match (&self.origin, &other.origin) {
            (Some(a), Some(b)) => a.is_after(b),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns_in_characters() {
        let source = Source {
            name: "f.toml".into(),
            text: "a = 1\nbé = \"x\"\n".into(),
            layer: 0,
            via: None,
        };
        let at = source.locate(0);
        assert_eq!((at.line, at.column), (1, 1));
        let at = source.locate("a = 1\nbé = ".len());
        assert_eq!((at.line, at.column), (2, 6));
    }
}
