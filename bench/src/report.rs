//! The printed result: one row per measurement with its ceiling, ratio, target and
//! verdict, followed by notes (failures, side figures).

use std::fmt::Write as _;
use std::time::Duration;

/// Whether a row met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Target met.
    Pass,
    /// Target missed.
    Miss,
    /// No target: the row is a ceiling or a figure to read.
    Info,
}

impl Verdict {
    /// `Pass` when `met`, else `Miss`.
    pub fn of(met: bool) -> Self {
        if met { Verdict::Pass } else { Verdict::Miss }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Info => "-",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub measurement: String,
    /// The figure.
    pub value: String,
    /// The ceiling it is compared with, if any.
    pub ceiling: String,
    /// value / ceiling, if meaningful.
    pub ratio: Option<f64>,
    /// The target, in words.
    pub target: String,
    /// Met or not.
    pub verdict: Verdict,
}

impl Row {
    /// A row without ceiling or target.
    pub fn info(measurement: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            measurement: measurement.into(),
            value: value.into(),
            ceiling: "-".into(),
            ratio: None,
            target: "-".into(),
            verdict: Verdict::Info,
        }
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The table.
    pub rows: Vec<Row>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a row.
    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Adds a note when there is one.
    pub fn note_opt(&mut self, note: Option<String>) {
        self.notes.extend(note);
    }

    /// The table and notes as text.
    pub fn render(&self) -> String {
        let header = ["measurement", "value", "ceiling", "ratio", "target", "result"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.measurement.clone(),
                    row.value.clone(),
                    row.ceiling.clone(),
                    row.ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                    row.target.clone(),
                    row.verdict.label().to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = width - cell.chars().count();
                // Text left-aligned, figures right-aligned.
                if i == 0 || i == 4 || i == 5 {
                    let _ = write!(text, "{cell}{} | ", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{}{cell} | ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end_matches([' ', '|']));
        };
        line(&mut out, &header.map(str::to_owned));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("-|-"));
        for cells in &cells {
            line(&mut out, cells);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nnotes:");
            for note in &self.notes {
                let _ = writeln!(out, "  - {note}");
            }
        }
        out
    }
}

/// `12,345/s`.
pub fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round() as u64))
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `3.42 ms`, or `-` without a figure.
pub fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(9999.6), "10,000/s");
    }

    #[test]
    fn the_table_has_a_header_a_rule_and_one_line_per_row() {
        let mut report = Report::default();
        report.row(Row::info("ceiling", rate(10.0)));
        report.row(Row {
            measurement: "reads".into(),
            value: rate(5.0),
            ceiling: rate(10.0),
            ratio: Some(0.5),
            target: ">= 0.5".into(),
            verdict: Verdict::of(true),
        });
        report.note("a note");
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("measurement"));
        assert!(lines[1].starts_with("---"));
        assert!(lines[3].contains("0.50") && lines[3].ends_with("PASS"));
        assert!(text.contains("  - a note"));
    }
}
