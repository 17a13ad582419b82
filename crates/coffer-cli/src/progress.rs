//! A terminal progress bar for transfers, shown only on a terminal and only
//! once a transfer has taken more than a moment.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Transfers quicker than this never show a bar.
const SHOW_AFTER: Duration = Duration::from_millis(400);

/// Draws on stderr through indicatif.
pub struct TerminalProgress {
    started: Instant,
    total: Mutex<Option<u64>>,
    moved: Mutex<u64>,
    bar: Mutex<Option<ProgressBar>>,
    /// What is counted, when not bytes (`rows` ...).
    items: Option<&'static str>,
}

impl TerminalProgress {
    /// A reporter, or `None` when stderr is not a terminal (piped, redirected, CI).
    pub fn for_terminal(enabled: bool) -> Option<Arc<dyn coffer::Progress>> {
        Self::reporter(enabled, None)
    }

    /// A reporter of a count of `items` (`rows` ...) rather than bytes.
    #[cfg(feature = "catalog-postgres")] // only catalog migrate counts rows
    pub fn counting(enabled: bool, items: &'static str) -> Option<Arc<dyn coffer::Progress>> {
        Self::reporter(enabled, Some(items))
    }

    fn reporter(enabled: bool, items: Option<&'static str>) -> Option<Arc<dyn coffer::Progress>> {
        (enabled && std::io::stderr().is_terminal()).then(|| {
            Arc::new(TerminalProgress {
                started: Instant::now(),
                total: Mutex::new(None),
                moved: Mutex::new(0),
                bar: Mutex::new(None),
                items,
            }) as Arc<dyn coffer::Progress>
        })
    }

    /// Set the size known before the transfer starts (a file's length).
    fn new_bar(&self, total: Option<u64>) -> ProgressBar {
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::no_length(),
        };
        let template = match (total, self.items) {
            (Some(_), None) => "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}".to_owned(),
            (None, None) => "{spinner} {bytes} {bytes_per_sec}".to_owned(),
            (Some(_), Some(items)) => format!("{{bar:40}} {{pos}}/{{len}} {items} {{per_sec}} eta {{eta}}"),
            (None, Some(items)) => format!("{{spinner}} {{pos}} {items} {{per_sec}}"),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar
    }
}

impl coffer::Progress for TerminalProgress {
    fn start(&self, total: Option<u64>) {
        if let (Ok(mut known), Some(total)) = (self.total.lock(), total) {
            *known = Some(total);
        }
    }

    fn advance(&self, bytes: u64) {
        let Ok(mut moved) = self.moved.lock() else {
            return;
        };
        *moved += bytes;
        let Ok(mut bar) = self.bar.lock() else { return };
        if bar.is_none() && self.started.elapsed() >= SHOW_AFTER {
            let total = self.total.lock().ok().and_then(|t| *t);
            *bar = Some(self.new_bar(total));
        }
        if let Some(bar) = bar.as_ref() {
            bar.set_position(*moved);
        }
    }

    fn finish(&self) {
        if let Ok(mut bar) = self.bar.lock()
            && let Some(bar) = bar.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Tell `progress` the total size ahead of a transfer that cannot know it itself.
pub fn announce_total(progress: &Option<Arc<dyn coffer::Progress>>, total: u64) {
    if let Some(progress) = progress {
        progress.start(Some(total));
    }
}
