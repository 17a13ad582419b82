//! Timestamps: microseconds since the Unix epoch, shown as RFC 3339 in UTC.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A point in time with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// A system time (times before 1970 count as the epoch).
    pub fn from_system(at: SystemTime) -> Self {
        let micros = at.duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// From microseconds since the Unix epoch.
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// This time plus `span` (the greatest time when that overflows).
    pub fn plus(self, span: Duration) -> Self {
        let micros = i64::try_from(span.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    /// Parse a point in time as RFC 3339 (`2024-05-01T12:00:00Z`), a date
    /// (`2024-05-01`, midnight UTC), or a span before now (`90m`, `7d`, `1h 30m`).
    pub fn parse_human(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Ok(ago) = humantime::parse_duration(text) {
            let micros = i64::try_from(ago.as_micros()).unwrap_or(i64::MAX);
            return Ok(Timestamp(Timestamp::now().0.saturating_sub(micros)));
        }
        if before_epoch(text) {
            return Err(before_epoch_error(text));
        }
        Self::parse_point(text).map_err(|_| {
            Error::invalid_input(format!(
                "invalid time {text:?}: expected RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01) \
                 or a span before now (7d, 90m)"
            ))
        })
    }

    /// Parse a point in time as RFC 3339 (`2033-01-01T00:00:00Z`) or a date
    /// (`2033-01-01`, midnight UTC); a span is not a point.
    pub fn parse_point(text: &str) -> Result<Self> {
        let text = text.trim();
        if before_epoch(text) {
            return Err(before_epoch_error(text));
        }
        let parsed = if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
            Self::parse(&format!("{text}T00:00:00Z"))
        } else {
            Self::parse(text)
        };
        parsed.map_err(|_| {
            Error::invalid_input(format!(
                "invalid time {text:?}: expected RFC 3339 (2033-01-01T00:00:00Z) or a date (2033-01-01)"
            ))
        })
    }

    /// Parse RFC 3339, for example `2024-05-01T12:00:00Z`.
    pub fn parse(text: &str) -> Result<Self> {
        if before_epoch(text) {
            return Err(before_epoch_error(text));
        }
        let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
            Error::invalid_input(format!(
                "invalid time {text:?}: {e}; expected RFC 3339 like 2024-05-01T12:00:00Z"
            ))
        })?;
        let micros = time.duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        Ok(Timestamp(i64::try_from(micros).unwrap_or(i64::MAX)))
    }
}

/// Whether `text` starts with a year before 1970 (`1960-01-01...`): times are
/// counted from the Unix epoch, and none of coffer's can be older.
fn before_epoch(text: &str) -> bool {
    text.as_bytes().get(4) == Some(&b'-')
        && text
            .get(..4)
            .and_then(|year| year.parse::<u32>().ok())
            .is_some_and(|year| year < 1970)
}

fn before_epoch_error(text: &str) -> Error {
    Error::invalid_input(format!(
        "invalid time {text:?}: times before 1970-01-01 are not accepted"
    ))
}

/// The last microsecond RFC 3339 can write (9999-12-31T23:59:59.999999Z).
const MAX_RFC3339_MICROS: i64 = 253_402_300_799_999_999;

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Clamped to what RFC 3339 can write: a formatting error would panic in `to_string`.
        let micros = u64::try_from(self.0.min(MAX_RFC3339_MICROS)).unwrap_or(0);
        let time = UNIX_EPOCH + Duration::from_micros(micros);
        write!(f, "{}", humantime::format_rfc3339_micros(time))
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

impl TryFrom<String> for Timestamp {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Timestamp::parse(&s)
    }
}

/// A span in the largest unit that holds it exactly, the way it is usually
/// written and read back by the span parser: `400d`, `7y`, `90m`, `1500ms`
/// (not humantime's `1year 1month 4days 7h 26m 24s` for 400 days). A year is
/// 365.25 days, as the parser takes it; so a span of years and a rest that
/// is not whole days (`1y 2d` is 8814 hours) prints as its years and the
/// rest: `1y 2d`, `1y 6h`.
pub fn format_span(span: Duration) -> String {
    const YEAR: u128 = 31_557_600_000_000_000;
    const DAY: u128 = 86_400_000_000_000;
    const UNITS: [(&str, u128); 7] = [
        ("y", 31_557_600_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ];
    let nanos = span.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let rest = nanos % YEAR;
    if nanos >= YEAR && rest != 0 && !nanos.is_multiple_of(DAY) {
        let rest = Duration::from_nanos(u64::try_from(rest).unwrap_or(u64::MAX));
        return format!("{}y {}", nanos / YEAR, format_span(rest));
    }
    match UNITS.iter().find(|(_, size)| nanos.is_multiple_of(*size)) {
        Some((unit, size)) => format!("{}{unit}", nanos / size),
        None => format!("{nanos}ns"),
    }
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01
/// (Howard Hinnant's `civil_from_days`). No overflow for any `days` that an
/// `i64` of microseconds can reach.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365], from March 1
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let t = Timestamp::from_micros(1_714_564_800_123_456);
        assert_eq!(t.to_string(), "2024-05-01T12:00:00.123456Z");
        assert_eq!(Timestamp::parse(&t.to_string()).ok(), Some(t));
        assert!(Timestamp::parse("yesterday").is_err());
        assert_eq!(
            Timestamp::from_micros(i64::MAX).to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn spans_print_in_the_unit_they_are_written_in() {
        for text in [
            "400d", "7y", "90m", "36h", "10s", "1500ms", "1d", "1y 2d", "1y 6h", "2y 3h",
        ] {
            let span = humantime::parse_duration(text).unwrap();
            assert_eq!(super::format_span(span), text);
        }
        assert_eq!(super::format_span(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(super::format_span(Duration::ZERO), "0s");
        assert_eq!(super::format_span(Duration::from_nanos(1500)), "1500ns");
    }
}
