//! pwru's per-packet outputs (`--output-series`, `--output-paths`, `--output-paths-svg`):
//! events grouped by the library's series module, printed as blocks, summed up at exit.

use pwru_core::event::WallClock;
use pwru_core::format::{paths_svg, write_paths_text, write_series_json, write_series_text};
use pwru_core::series::{Grouper, PathAggregator, PathOptions, SeriesOptions, SeriesStats};
use pwru_core::{Event, LostEvents};

use crate::args::Args;

/// The grouping and what is printed from it.
pub struct SeriesOut {
    grouper: Grouper,
    paths: PathAggregator,
    blocks: bool,
    json: bool,
    keep_paths: bool,
}

impl SeriesOut {
    /// From the flags; `None` when no series flag is given.
    pub fn new(a: &Args) -> Option<SeriesOut> {
        a.series().then(|| SeriesOut {
            grouper: Grouper::new(SeriesOptions::default()),
            paths: PathAggregator::new(PathOptions::default()),
            blocks: a.output_series,
            json: a.output_json,
            keep_paths: a.output_paths || a.output_paths_svg.is_some(),
        })
    }

    /// Whether packets are printed as blocks instead of one line per event.
    pub fn replaces_lines(&self) -> bool {
        self.blocks
    }

    /// Adds an event; returns the blocks of the series it completed (empty: none).
    pub fn event(&mut self, ev: &Event) -> Vec<u8> {
        self.grouper.push(ev);
        self.take()
    }

    /// Marks a loss in every open series.
    pub fn lost(&mut self, lost: &LostEvents) {
        self.grouper.mark_lost(lost);
    }

    /// Ends the series idle by now; returns their blocks.
    pub fn tick(&mut self) -> Vec<u8> {
        if let Ok(now) = WallClock::monotonic_now_ns() {
            self.grouper.expire(now);
        }
        self.take()
    }

    /// Ends every open series; returns their blocks.
    pub fn flush(&mut self) -> Vec<u8> {
        self.grouper.flush();
        self.take()
    }

    /// The grouping's counters.
    pub fn stats(&self) -> SeriesStats {
        self.grouper.stats()
    }

    /// The path summary text.
    pub fn paths_text(&self) -> String {
        let mut s = String::new();
        write_paths_text(&self.paths, &mut s);
        s
    }

    /// The path picture.
    pub fn paths_svg(&self) -> String {
        paths_svg(&self.paths)
    }

    fn take(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut text = String::new();
        while let Some(s) = self.grouper.pop() {
            if self.keep_paths {
                self.paths.add(&s);
            }
            if !self.blocks {
                continue;
            }
            if self.json {
                write_series_json(&s, &mut out);
            } else {
                text.clear();
                write_series_text(&s, &mut text);
                out.extend_from_slice(text.as_bytes());
            }
        }
        out
    }
}
