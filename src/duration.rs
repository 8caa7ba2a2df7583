//! Durations given in seconds: validation and conversion.
//!
//! The rules are plain Rust ([`parse_seconds`]) so they can be unit- and
//! property-tested without an interpreter; [`extract`] is the thin PyO3 edge.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

use crate::errors::{Error, Result};

/// moka refuses cache-wide durations above 1000 years (it panics at build time).
pub const MAX_SECONDS: f64 = 1_000.0 * 365.0 * 24.0 * 3600.0;

/// What to do with a duration above [`MAX_SECONDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AboveLimit {
    /// Cache-wide ttl/tti: the engine cannot hold it, so it is an error.
    Reject,
    /// Per-entry values: 1000 years already means "as long as the cache lives",
    /// so larger values keep working (as they did in moka-py 0.5.0) by clamping.
    Clamp,
}

/// Why a number of seconds is not a usable duration.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationError {
    /// Zero, negative, NaN or infinite.
    NotPositive(f64),
    /// Above [`MAX_SECONDS`] where that is not allowed.
    OutOfRange(f64),
}

impl DurationError {
    /// The message for the Python `ValueError`, naming the argument.
    pub fn message(&self, name: &str) -> String {
        match self {
            DurationError::NotPositive(s) if s.is_infinite() => {
                format!("{name} must be positive and finite, got {s}")
            }
            DurationError::NotPositive(s) => format!("{name} must be positive, got {s}"),
            DurationError::OutOfRange(s) => format!(
                "{name} is out of range: {s} seconds is more than the engine's limit of \
                 1000 years ({MAX_SECONDS} seconds)"
            ),
        }
    }
}

/// Converts a positive, finite number of seconds into a [`Duration`].
pub fn parse_seconds(
    seconds: f64,
    above_limit: AboveLimit,
) -> std::result::Result<Duration, DurationError> {
    if seconds.is_nan() || seconds <= 0.0 || seconds.is_infinite() {
        return Err(DurationError::NotPositive(seconds));
    }
    let seconds = if seconds > MAX_SECONDS {
        match above_limit {
            AboveLimit::Reject => return Err(DurationError::OutOfRange(seconds)),
            AboveLimit::Clamp => MAX_SECONDS,
        }
    } else {
        seconds
    };
    let duration = Duration::from_secs_f64(seconds);
    // A tiny positive float can round to zero nanoseconds; moka would treat a zero
    // duration as "already expired", which is not what a positive value asks for.
    Ok(duration.max(Duration::from_nanos(1)))
}

/// Reads an optional `ttl`/`tti`-like argument: `None`, or a number of seconds.
pub fn extract(
    name: &str,
    value: Option<&Bound<'_, PyAny>>,
    above_limit: AboveLimit,
) -> Result<Option<Duration>> {
    let Some(value) = value else { return Ok(None) };
    if value.is_none() {
        return Ok(None);
    }
    let seconds = seconds_of(name, value)?;
    parse_seconds(seconds, above_limit)
        .map(Some)
        .map_err(|e| Error::value_error(e.message(name)))
}

/// Reads a number of seconds (int, float, or anything with `__float__`).
pub fn seconds_of(name: &str, value: &Bound<'_, PyAny>) -> Result<f64> {
    number_of(value)?.ok_or_else(|| {
        Error::type_error(format!(
            "{name} must be a number of seconds (int or float), not {}",
            type_name(value)
        ))
    })
}

/// `float(value)` for ints, floats and anything with `__float__`; `None` for anything
/// else. An int too large for a float becomes the largest float of its sign: it is a
/// number all the same, beyond every limit, and must be reported as out of range,
/// not as the wrong type.
pub fn number_of(value: &Bound<'_, PyAny>) -> Result<Option<f64>> {
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(Some(f.value()));
    }
    match value.extract::<f64>() {
        Ok(f) => Ok(Some(f)),
        Err(_) if value.is_instance_of::<PyInt>() => {
            Ok(Some(if value.gt(0)? { f64::MAX } else { -f64::MAX }))
        }
        Err(_) => Ok(None),
    }
}

/// `type(value).__name__`, for error messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_values_convert() {
        assert_eq!(
            parse_seconds(1.5, AboveLimit::Reject),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_seconds(1e-12, AboveLimit::Reject),
            Ok(Duration::from_nanos(1))
        );
        assert_eq!(
            parse_seconds(MAX_SECONDS, AboveLimit::Reject),
            Ok(Duration::from_secs_f64(MAX_SECONDS))
        );
    }

    #[test]
    fn non_positive_values_are_rejected() {
        for s in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                parse_seconds(s, AboveLimit::Clamp),
                Err(DurationError::NotPositive(_))
            ));
        }
    }

    #[test]
    fn above_the_limit_depends_on_the_caller() {
        assert_eq!(
            parse_seconds(1e11, AboveLimit::Reject),
            Err(DurationError::OutOfRange(1e11))
        );
        assert_eq!(
            parse_seconds(1e300, AboveLimit::Clamp),
            Ok(Duration::from_secs_f64(MAX_SECONDS))
        );
    }

    #[test]
    fn messages_name_the_argument_and_keep_upstream_fragments() {
        assert!(DurationError::NotPositive(-1.0)
            .message("ttl")
            .starts_with("ttl must be positive"));
        assert!(DurationError::NotPositive(f64::INFINITY)
            .message("tti")
            .starts_with("tti must be positive"));
        assert!(DurationError::OutOfRange(1e300)
            .message("ttl")
            .starts_with("ttl is out of range: "));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_and_accepts_exactly_the_positive_finite(s in any::<f64>()) {
                let rejecting = parse_seconds(s, AboveLimit::Reject);
                let clamping = parse_seconds(s, AboveLimit::Clamp);
                let usable = s > 0.0 && s.is_finite();
                prop_assert_eq!(clamping.is_ok(), usable);
                prop_assert_eq!(rejecting.is_ok(), usable && s <= MAX_SECONDS);
                if let Ok(d) = clamping {
                    prop_assert!(d > Duration::ZERO);
                    prop_assert!(d.as_secs_f64() <= MAX_SECONDS * (1.0 + 1e-9));
                }
            }
        }
    }
}

#[cfg(test)]
mod limit_properties {
    //! How every number of seconds converts, and how the two limits relate.

    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// More seconds never give a shorter duration.
        #[test]
        fn conversion_is_monotonic(a in 1e-12f64..MAX_SECONDS, b in 1e-12f64..MAX_SECONDS) {
            let (short, long) = if a <= b { (a, b) } else { (b, a) };
            let short = parse_seconds(short, AboveLimit::Reject).unwrap();
            let long = parse_seconds(long, AboveLimit::Reject).unwrap();
            prop_assert!(short <= long);
        }

        /// Up to the limit both modes give the same duration; past it (finite) the
        /// cache-wide mode refuses and the per-entry mode gives exactly the limit.
        #[test]
        fn the_two_modes_differ_only_past_the_limit(s in any::<f64>()) {
            let rejecting = parse_seconds(s, AboveLimit::Reject);
            let clamping = parse_seconds(s, AboveLimit::Clamp);
            if s > MAX_SECONDS && s.is_finite() {
                prop_assert_eq!(rejecting, Err(DurationError::OutOfRange(s)));
                prop_assert_eq!(clamping, Ok(Duration::from_secs_f64(MAX_SECONDS)));
            } else {
                prop_assert_eq!(format!("{rejecting:?}"), format!("{clamping:?}"));
            }
        }

        /// Every refusal names the argument first, whatever the value.
        #[test]
        fn refusals_name_the_argument(s in any::<f64>(), name in "[a-z_]{1,16}") {
            if let Err(refusal) = parse_seconds(s, AboveLimit::Reject) {
                let message = refusal.message(&name);
                prop_assert!(message.starts_with(&format!("{name} ")), "{}", message);
                prop_assert!(
                    message.contains("must be positive") || message.contains("is out of range"),
                    "{}",
                    message
                );
            }
        }
    }

    /// Ints too large for a float are read as the largest float of their sign
    /// (`number_of`): out of range for the cache-wide limit, clamped per entry, and
    /// "not positive" when negative.
    #[test]
    fn the_largest_floats_stand_for_huge_ints() {
        assert_eq!(
            parse_seconds(f64::MAX, AboveLimit::Reject),
            Err(DurationError::OutOfRange(f64::MAX))
        );
        assert_eq!(
            parse_seconds(f64::MAX, AboveLimit::Clamp),
            Ok(Duration::from_secs_f64(MAX_SECONDS))
        );
        assert_eq!(
            parse_seconds(-f64::MAX, AboveLimit::Clamp),
            Err(DurationError::NotPositive(-f64::MAX))
        );
    }
}
