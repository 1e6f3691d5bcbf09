//! Duration flags (`--timeout`, `--worker-ttl`, `--idle`, `--deadline`):
//! the crate's one duration type, [`Dur`], with a ceiling.
//!
//! A bare whole number still means seconds, as it always did on the command
//! line (`--idle 30`); nowhere else does Weir accept one. The ceiling keeps
//! every later `Instant + d`, timer and TTL far from overflow, and no flag
//! here has a use for more than a day.

use crate::domain::Dur;

/// The longest duration a flag accepts.
pub const MAX: Dur = Dur::from_secs(24 * 3600);

/// The longest topic retention `--retention` accepts: a year.
pub const MAX_RETENTION: Dur = Dur::from_secs(365 * 24 * 3600);

/// Parses `--retention`: like [`parse`], from a minute up to [`MAX_RETENTION`]
/// (e.g. `168h` for a week).
pub fn parse_retention(s: &str) -> Result<Dur, String> {
    parse_within(s, MAX_RETENTION).and_then(|d| {
        if d.as_millis() < 60_000 {
            Err("too short: at least 1m".to_owned())
        } else {
            Ok(d)
        }
    })
}

/// Parses a duration flag: `250ms`, `30s`, `10m`, `1h` or a bare number of seconds, at most [`MAX`].
pub fn parse(s: &str) -> Result<Dur, String> {
    parse_within(s, MAX)
}

fn parse_within(s: &str, max: Dur) -> Result<Dur, String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let written = if digits == s.len() && digits > 0 {
        format!("{s}s")
    } else {
        s.to_owned()
    };
    match written.parse::<Dur>() {
        Ok(d) if d <= max => Ok(d),
        Ok(_) => Err(format!("too long: at most {max}")),
        // Well formed yet unparsed: the number overflowed.
        Err(_) if digits > 0 && matches!(&written[digits..], "ms" | "s" | "m" | "h") => {
            Err(format!("too long: at most {max}"))
        }
        Err(_) => Err(
            "expected a whole number and a unit, ms, s, m or h (e.g. 500ms, 30s, 2m)".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_units_and_bare_seconds() {
        for (s, ms) in [
            ("250ms", 250),
            ("30s", 30_000),
            ("10m", 600_000),
            ("1h", 3_600_000),
            ("30", 30_000),
            ("0s", 0),
            ("24h", 86_400_000),
        ] {
            assert_eq!(parse(s).map(Dur::as_millis), Ok(ms), "{s}");
        }
    }

    #[test]
    fn retention_goes_from_a_minute_to_a_year() {
        assert_eq!(parse_retention("168h").map(Dur::as_millis), Ok(604_800_000));
        assert_eq!(
            parse_retention("30s"),
            Err("too short: at least 1m".to_owned())
        );
        assert!(parse_retention("8761h")
            .unwrap_err()
            .starts_with("too long"));
    }

    #[test]
    fn refuses_what_is_not_a_sane_duration() {
        for s in [
            "", "s", "-1s", "1.5s", "1.5", "5d", "3 days", "1h30m", " 1s",
        ] {
            let e = parse(s).unwrap_err();
            assert!(e.contains("e.g. 500ms, 30s"), "{s}: {e}");
        }
        for s in [
            "99999999999999999999s",
            "99999999999999999999",
            "25h",
            "86400001ms",
        ] {
            assert_eq!(parse(s), Err("too long: at most 24h".to_owned()), "{s}");
        }
    }
}
