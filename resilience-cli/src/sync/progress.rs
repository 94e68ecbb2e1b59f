//! Progress: a redrawn line on a terminal, plain log lines otherwise.
//!
//! A terminal gets one line rewritten in place (rows, rate) at most ten times a second; a
//! pipe or a log collector gets an ordinary log line at most every few seconds, so CI logs
//! stay readable. Rates are rows per second since the source started.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Progress of one source.
pub struct Progress {
    source: String,
    started: Instant,
    last_shown: Instant,
    rows: u64,
    terminal: bool,
    drawn: bool,
}

impl Progress {
    /// Starts reporting for `source`.
    pub fn new(source: &str) -> Progress {
        let now = Instant::now();
        Progress {
            source: source.to_owned(),
            started: now,
            last_shown: now,
            rows: 0,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Rows per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.rows as f64 / secs
        } else {
            0.0
        }
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Counts `rows` more and shows progress when it is time.
    pub fn add(&mut self, rows: u64) {
        self.rows += rows;
        metrics::counter!("sync_rows_total", "source" => self.source.clone()).increment(rows);
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        if self.last_shown.elapsed() < every {
            return;
        }
        self.last_shown = Instant::now();
        metrics::gauge!("sync_rows_per_second", "source" => self.source.clone()).set(self.rate());
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{}: {} rows, {:.0} rows/s",
                self.source,
                self.rows,
                self.rate()
            );
            let _ = err.flush();
            self.drawn = true;
        } else {
            tracing::info!(source = %self.source, rows = self.rows, rate = format!("{:.0}", self.rate()), "progress");
        }
    }

    /// Clears the terminal line before a log line is printed.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
