//! Exact decimals for weights, multipliers and shares: a u128 count of 10^-18 units.
//!
//! Why fixed point with 18 places rather than a u128 rational: every input is written as a
//! decimal string (CRD weights, `0.2`/`0.8` splits, reputation scores), so 18 places hold
//! each of them exactly, and sums stay exact, which is what "weights sum to exactly 1"
//! needs. A rational would also stay exact under multiplication, but its denominators grow
//! with every product and shares of a million nodes would have to be brought to a common
//! denominator before they can be summed. 18 places is the most a token may have
//! (`token.decimals` ≤ 18, the Ethereum "wad"), and leaves room for 3.4 × 10^20 whole units.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::wide::{U256, mul_div_floor};

/// Units of 10^-18 in one.
const SCALE: u128 = 1_000_000_000_000_000_000;
/// Fractional digits a [`Decimal`] keeps.
pub const DECIMAL_PLACES: usize = 18;

/// A non-negative decimal with exactly 18 fractional digits, stored as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Decimal(u128);

/// Why a decimal string was refused; the value is quoted so the message names it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecimalError {
    /// Not of the form `digits` or `digits.digits` (no sign, exponent or spaces).
    #[error("{0:?} is not a decimal number")]
    NotDecimal(String),
    /// More than 18 fractional digits: refused rather than silently rounded.
    #[error("{0:?} has more than 18 decimal places")]
    TooPrecise(String),
    /// Above what 18-place fixed point holds in a u128 (about 3.4 × 10^20).
    #[error("{0:?} is too large")]
    TooLarge(String),
}

impl Decimal {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// One.
    pub const ONE: Self = Self(SCALE);

    /// The decimal `units × 10^-18`.
    pub const fn from_units(units: u128) -> Self {
        Self(units)
    }

    /// The raw count of 10^-18 units.
    pub const fn units(self) -> u128 {
        self.0
    }

    /// The whole number `n` (every u64 fits: 1.8 × 10^19 < 3.4 × 10^20).
    pub const fn from_int(n: u64) -> Self {
        Self(n as u128 * SCALE)
    }

    /// `numerator / denominator`, floored to 18 places; `None` if it does not fit or the
    /// denominator is zero.
    pub fn from_ratio(numerator: u128, denominator: u128) -> Option<Self> {
        mul_div_floor(numerator, SCALE, denominator).map(Self)
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Exact sum, `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// Product floored to 18 places, `None` on overflow.
    pub fn checked_mul(self, other: Self) -> Option<Self> {
        mul_div_floor(self.0, other.0, SCALE).map(Self)
    }

    /// Exact product with a whole number, `None` on overflow.
    pub fn checked_mul_int(self, n: u64) -> Option<Self> {
        self.0.checked_mul(u128::from(n)).map(Self)
    }

    /// Parses `digits` or `digits.digits` (at most 18 after the point), exactly.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let dotted_without_fraction = text.contains('.') && fraction.is_empty();
        if whole.is_empty() || !digits(whole) || !digits(fraction) || dotted_without_fraction {
            return Err(DecimalError::NotDecimal(text.to_owned()));
        }
        if fraction.len() > DECIMAL_PLACES {
            return Err(DecimalError::TooPrecise(text.to_owned()));
        }
        let too_large = || DecimalError::TooLarge(text.to_owned());
        let whole: u128 = whole.parse().map_err(|_| too_large())?;
        // `fraction` is 0..=18 ASCII digits, which always parse into a u128.
        let padded = format!("{fraction:0<18}");
        let fraction: u128 = padded.parse().map_err(|_| too_large())?;
        whole
            .checked_mul(SCALE)
            .and_then(|w| w.checked_add(fraction))
            .map(Self)
            .ok_or_else(too_large)
    }
}

/// `numerator / denominator` to 18 places, floored, printed canonically like a
/// [`Decimal`] but without its size limit (a reward per share can exceed 3.4 × 10^20);
/// "0" for a zero denominator.
pub(crate) fn ratio_to_string(numerator: u128, denominator: Decimal) -> String {
    // numerator × 10^36 < 2^128 · 2^120 fits in 256 bits; dividing by the denominator's
    // units (value × 10^18) leaves the ratio × 10^18.
    const SCALE_SQUARED: u128 = SCALE * SCALE;
    let Some((scaled, _)) = U256::mul(numerator, SCALE_SQUARED).div_rem(denominator.0) else {
        return "0".to_owned();
    };
    // SCALE is not zero, so this division always answers.
    let Some((whole, fraction)) = scaled.div_rem(SCALE) else {
        return "0".to_owned();
    };
    let whole = whole.to_decimal();
    if fraction == 0 {
        return whole;
    }
    let digits = format!("{fraction:018}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for Decimal {
    /// Canonical form: no trailing fractional zeros and no point for whole numbers, so
    /// equal values always print the same bytes (the manifest depends on it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / SCALE, self.0 % SCALE);
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:018}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_exactly_or_names_the_value() {
        let ok = [
            ("0", 0),
            ("1", SCALE),
            ("0.4", 4 * SCALE / 10),
            ("00.50", SCALE / 2),
            ("0.000000000000000001", 1),
            ("340282366920.5", 340_282_366_920 * SCALE + SCALE / 2),
        ];
        for (text, units) in ok {
            assert_eq!(Decimal::parse(text), Ok(Decimal(units)), "{text}");
        }
        let bad = [
            ("", "\"\" is not a decimal number"),
            (".5", "\".5\" is not a decimal number"),
            ("1.", "\"1.\" is not a decimal number"),
            ("-1", "\"-1\" is not a decimal number"),
            ("1e3", "\"1e3\" is not a decimal number"),
            (" 1", "\" 1\" is not a decimal number"),
            ("1.2.3", "\"1.2.3\" is not a decimal number"),
            (
                "0.0000000000000000001",
                "\"0.0000000000000000001\" has more than 18 decimal places",
            ),
            (
                "340282366920938463464",
                "\"340282366920938463464\" is too large",
            ),
        ];
        for (text, message) in bad {
            let err = Decimal::parse(text).expect_err(text);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(Decimal::parse("0.40").expect("ok").to_string(), "0.4");
        assert_eq!(Decimal::parse("7.000").expect("ok").to_string(), "7");
        assert_eq!(Decimal::ZERO.to_string(), "0");
        assert_eq!(Decimal(1).to_string(), "0.000000000000000001");
    }

    #[test]
    fn products_floor_to_18_places() {
        let third = Decimal::from_ratio(1, 3).expect("fits");
        assert_eq!(third.to_string(), "0.333333333333333333");
        let tiny = Decimal(1);
        assert_eq!(
            tiny.checked_mul(Decimal::parse("0.5").expect("ok")),
            Some(Decimal::ZERO)
        );
        assert_eq!(Decimal(u128::MAX).checked_mul(Decimal::from_int(2)), None);
    }

    #[test]
    fn ratios_print_past_the_decimal_range() {
        let third = Decimal::from_int(3);
        assert_eq!(ratio_to_string(1, third), "0.333333333333333333");
        assert_eq!(
            ratio_to_string(10, Decimal::parse("0.5").expect("ok")),
            "20"
        );
        assert_eq!(ratio_to_string(7, Decimal::ZERO), "0");
        assert_eq!(
            ratio_to_string(u128::MAX, Decimal(1)),
            format!("{}000000000000000000", u128::MAX)
        );
    }

    proptest! {
        #[test]
        fn display_round_trips(units: u128) {
            let value = Decimal(units);
            prop_assert_eq!(Decimal::parse(&value.to_string()), Ok(value));
        }
    }
}
