//! Progress of long work: a bar on a terminal, plain lines otherwise.
//!
//! On a terminal (standard error) the bar shows what is running, how far it
//! is and how long is left (indicatif); lines printed through
//! [`Progress::println`] appear above it. When standard error is not a
//! terminal (CI logs, pipes) there is no bar: each new step is one plain
//! line, and byte counts are reported at every tenth of the way.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// What a progress count measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Whole steps (boots, jobs, targets).
    Steps,
    /// Bytes.
    Bytes,
    /// Seconds of a timed run.
    Seconds,
}

/// A progress display for one piece of long work.
#[derive(Clone)]
pub struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    plain: Arc<Mutex<PlainState>>,
    unit: Unit,
}

#[derive(Default)]
struct PlainState {
    total: u64,
    position: u64,
    tenth: u64,
}

impl Progress {
    /// Progress of `label` towards `total` units; a bar only when standard
    /// error is a terminal.
    pub fn new(label: &str, total: u64, unit: Unit) -> Progress {
        Progress::with_terminal(label, total, unit, std::io::stderr().is_terminal())
    }

    /// As [`Progress::new`], choosing bar or plain lines explicitly.
    pub fn with_terminal(label: &str, total: u64, unit: Unit, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(total);
            let counts = match unit {
                Unit::Steps => "{pos}/{len}",
                Unit::Bytes => "{bytes}/{total_bytes}",
                Unit::Seconds => "{pos}/{len} s",
            };
            let template = format!(
                "{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {counts} (about {{eta}} left) {{msg}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let plain = PlainState {
            total,
            ..PlainState::default()
        };
        Progress {
            label: label.to_owned(),
            bar,
            plain: Arc::new(Mutex::new(plain)),
            unit,
        }
    }

    /// True when a bar is drawn (standard error is a terminal).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Name the step now running; a plain line when there is no bar.
    pub fn step(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None => eprintln!("{}: {message}", self.label),
        }
    }

    /// Print `line` on standard error, above the bar when there is one.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Print `line` on standard output (a result), the bar hidden meanwhile.
    pub fn print_result(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// Set how far the work is.
    pub fn set_position(&self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            return;
        }
        let Ok(mut plain) = self.plain.lock() else {
            return;
        };
        plain.position = position;
        if self.unit == Unit::Bytes && plain.total > 0 {
            let tenth = (position.min(plain.total) * 10) / plain.total;
            if tenth > plain.tenth {
                plain.tenth = tenth;
                eprintln!(
                    "{}: {}% ({position} of {} bytes)",
                    self.label,
                    tenth * 10,
                    plain.total
                );
            }
        }
    }

    /// Advance by `delta`.
    pub fn inc(&self, delta: u64) {
        let position = match &self.bar {
            Some(bar) => bar.position() + delta,
            None => self.plain.lock().map_or(delta, |p| p.position + delta),
        };
        self.set_position(position);
    }

    /// Move the position with the clock for `seconds` (a timed run whose
    /// guest says nothing until the end), until [`Progress::finish`].
    pub fn follow_clock(&self, seconds: u64) {
        let Some(bar) = self.bar.clone() else { return };
        let started = Instant::now();
        thread::spawn(move || {
            while !bar.is_finished() {
                bar.set_position(started.elapsed().as_secs().min(seconds));
                thread::sleep(Duration::from_millis(500));
            }
        });
    }

    /// The work is over: clear the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// A writer for a guest's serial output that prints whole lines above
    /// the bar (or straight to standard output without one), and hands
    /// each line to `on_line` first.
    pub fn serial_writer(
        &self,
        on_line: impl FnMut(&Progress, &str) + Send + 'static,
    ) -> Box<dyn Write + Send> {
        Box::new(SerialWriter {
            progress: self.clone(),
            on_line: Box::new(on_line),
            pending: Vec::new(),
        })
    }
}

type LineHook = Box<dyn FnMut(&Progress, &str) + Send>;

struct SerialWriter {
    progress: Progress,
    on_line: LineHook,
    pending: Vec<u8>,
}

impl Write for SerialWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\n');
            (self.on_line)(&self.progress, text);
            match &self.progress.bar {
                Some(bar) => bar.suspend(|| println!("{text}")),
                None => println!("{text}"),
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_byte_progress_reports_each_tenth_once() {
        let progress = Progress::with_terminal("flash", 1000, Unit::Bytes, false);
        assert!(!progress.is_bar());
        progress.set_position(150);
        progress.set_position(190);
        progress.inc(10);
        let plain = progress.plain.lock().unwrap();
        assert_eq!((plain.position, plain.tenth), (200, 2));
    }

    #[test]
    fn serial_lines_reach_the_hook_whole() {
        let progress = Progress::with_terminal("bench", 2, Unit::Steps, false);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&seen);
        let mut writer = progress.serial_writer(move |p, line| {
            if line.starts_with("BENCH-END") {
                p.inc(1);
            }
            keep.lock().unwrap().push(line.to_owned());
        });
        writer.write_all(b"BENCH-BEGIN a\nBENCH-E").unwrap();
        writer.write_all(b"ND a\n").unwrap();
        assert_eq!(*seen.lock().unwrap(), ["BENCH-BEGIN a", "BENCH-END a"]);
        assert_eq!(progress.plain.lock().unwrap().position, 1);
    }
}
