//! The `log` backend: every record goes to serial and the framebuffer,
//! stamped with the time since kernel entry, filtered by level per module.
//!
//! The filter is a string in the familiar `env_logger` shape:
//! `info,nvme=debug,kernel::pci=trace` — a default level, then
//! `module=level` rules; the longest matching module prefix wins. It is
//! parsed into a fixed-size table, so the logger works before the heap does.

use core::fmt;

use log::{LevelFilter, Log, Metadata, Record};
use spin::RwLock;

use super::framebuffer::{self, Colour};
use super::serial;
use crate::arch::tsc;

const MAX_RULES: usize = 8;
const MAX_MODULE_LEN: usize = 48;

/// A per-module log filter.
#[derive(Clone, Copy, Debug)]
pub struct Filter {
    default: LevelFilter,
    rules: [Rule; MAX_RULES],
    len: usize,
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    module: [u8; MAX_MODULE_LEN],
    module_len: usize,
    level: LevelFilter,
}

/// Why a filter string was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterError {
    /// A level name that is not off/error/warn/info/debug/trace.
    UnknownLevel,
    /// More module rules than the table holds.
    TooManyRules,
    /// A module path longer than the table's slot.
    ModuleTooLong,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterError::UnknownLevel => {
                "unknown log level (use off, error, warn, info, debug or trace)"
            }
            FilterError::TooManyRules => "too many module rules in the log filter",
            FilterError::ModuleTooLong => "module path too long in the log filter",
        })
    }
}

const EMPTY_RULE: Rule = Rule {
    module: [0; MAX_MODULE_LEN],
    module_len: 0,
    level: LevelFilter::Off,
};

impl Filter {
    /// A filter with one level for every module.
    pub const fn new(default: LevelFilter) -> Filter {
        Filter {
            default,
            rules: [EMPTY_RULE; MAX_RULES],
            len: 0,
        }
    }

    /// Parse `level[,module=level]*`.
    pub fn parse(spec: &str) -> Result<Filter, FilterError> {
        let mut filter = Filter::new(LevelFilter::Info);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None => filter.default = parse_level(part)?,
                Some((module, level)) => {
                    let module = module.trim();
                    if filter.len == MAX_RULES {
                        return Err(FilterError::TooManyRules);
                    }
                    if module.len() > MAX_MODULE_LEN {
                        return Err(FilterError::ModuleTooLong);
                    }
                    let rule = &mut filter.rules[filter.len];
                    rule.module[..module.len()].copy_from_slice(module.as_bytes());
                    rule.module_len = module.len();
                    rule.level = parse_level(level.trim())?;
                    filter.len += 1;
                }
            }
        }
        Ok(filter)
    }

    /// The level in force for `target` (a module path).
    pub fn level_for(&self, target: &str) -> LevelFilter {
        let mut best: Option<(usize, LevelFilter)> = None;
        for rule in &self.rules[..self.len] {
            let module = &rule.module[..rule.module_len];
            let matches = target.as_bytes().starts_with(module)
                && (target.len() == module.len() || target[module.len()..].starts_with("::"));
            if matches && best.is_none_or(|(len, _)| module.len() > len) {
                best = Some((module.len(), rule.level));
            }
        }
        best.map_or(self.default, |(_, level)| level)
    }

    /// The most verbose level any rule allows (for `log::set_max_level`).
    pub fn max_level(&self) -> LevelFilter {
        self.rules[..self.len]
            .iter()
            .map(|r| r.level)
            .fold(self.default, core::cmp::max)
    }
}

fn parse_level(name: &str) -> Result<LevelFilter, FilterError> {
    name.parse().map_err(|_| FilterError::UnknownLevel)
}

struct Logger {
    filter: RwLock<Filter>,
}

static LOGGER: Logger = Logger {
    filter: RwLock::new(Filter::new(LevelFilter::Info)),
};

/// Install the logger with `filter`. Safe to call again to change the filter.
pub fn init(filter: Filter) {
    *LOGGER.filter.write() = filter;
    // Fails only if a logger is already installed, which is this one.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter.max_level());
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.filter.read().level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = tsc::since_entry_ns() / 1000;
        let (secs, micros) = (micros / 1_000_000, micros % 1_000_000);
        let line = format_args!(
            "[{secs:4}.{micros:06}] {:5} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        serial::print(line);
        let colour = match record.level() {
            log::Level::Error => Colour::Error,
            log::Level::Warn => Colour::Warning,
            log::Level::Info => Colour::Normal,
            _ => Colour::Dim,
        };
        framebuffer::print(line, colour);
    }

    fn flush(&self) {}
}
