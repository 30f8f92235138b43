//! Parsing Kubernetes quantities into whole bytes for the agent.

use crate::error::InvalidSpec;

/// Bytes in a quantity such as `100Gi`, `1.5G` or `1073741824`; `field` names it in errors.
/// Fractions of a byte round down (a volume cannot hold part of a byte).
pub fn bytes(text: &str, field: &str) -> Result<u64, InvalidSpec> {
    let bad = || {
        InvalidSpec::new(
            field,
            format!("{text:?} is not a byte quantity (e.g. 100Gi)"),
        )
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return Err(bad()),
    };
    let number = number.trim_start_matches('+');
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let parse = |s: &str| {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<u128>().map_err(|_| bad())
        }
    };
    let frac_digits = u32::try_from(frac.len()).map_err(|_| bad())?;
    let scale = 10u128.checked_pow(frac_digits).ok_or_else(bad)?;
    let scaled = parse(whole)?
        .checked_mul(scale)
        .and_then(|w| w.checked_add(parse(frac).ok()?))
        .ok_or_else(bad)?;
    let total = scaled.checked_mul(multiplier).ok_or_else(bad)? / scale;
    u64::try_from(total).map_err(|_| InvalidSpec::new(field, format!("{text:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_decimal_and_fractional_quantities() {
        let table = [
            ("100Gi", 100 << 30),
            ("1Gi", 1 << 30),
            ("512Mi", 512 << 20),
            ("1.5Gi", 3 << 29),
            ("2G", 2_000_000_000),
            ("1073741824", 1 << 30),
            ("+4Ki", 4096),
            ("0.5", 0),
        ];
        for (text, expected) in table {
            assert_eq!(bytes(text, "spec.capacity"), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_garbage_naming_the_field() {
        for text in ["", "Gi", "10Xi", "1.2.3Gi", "-1Gi", "100000Ei"] {
            let err = bytes(text, "spec.capacity").expect_err(text);
            assert_eq!(err.field, "spec.capacity", "{text}");
        }
    }
}
