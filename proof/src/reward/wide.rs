//! 256-bit intermediates, so `floor(pool × shares / Σ shares)` is exact for any u128
//! amounts. Hand-written (about 100 lines) rather than a big-integer dependency: reward
//! math needs one multiply, one divide by a u128 and decimal printing, nothing else.

const LOW64: u128 = u64::MAX as u128;

/// An unsigned 256-bit integer as two u128 halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct U256 {
    // Field order (hi first) makes the derived ordering numeric.
    hi: u128,
    lo: u128,
}

impl U256 {
    /// The value `lo`.
    pub(crate) const fn from_u128(lo: u128) -> Self {
        Self { hi: 0, lo }
    }

    /// The exact product `a × b`.
    pub(crate) fn mul(a: u128, b: u128) -> Self {
        let (a1, a0) = (a >> 64, a & LOW64);
        let (b1, b0) = (b >> 64, b & LOW64);
        // Each partial product of two 64-bit halves fits in u128; `mid` adds three values
        // below 2^64 each, so it cannot overflow either.
        let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
        let mid = (p00 >> 64) + (p01 & LOW64) + (p10 & LOW64);
        Self {
            hi: p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64),
            lo: (mid << 64) | (p00 & LOW64),
        }
    }

    /// `self + x`, or `None` past 2^256 (tests reassemble quotients with it).
    #[cfg(test)]
    pub(crate) fn checked_add_u128(self, x: u128) -> Option<Self> {
        let (lo, carry) = self.lo.overflowing_add(x);
        let hi = self.hi.checked_add(u128::from(carry))?;
        Some(Self { hi, lo })
    }

    /// The value when it fits in a u128.
    pub(crate) fn to_u128(self) -> Option<u128> {
        (self.hi == 0).then_some(self.lo)
    }

    /// Quotient and remainder of `self / d`; `None` for `d == 0`.
    pub(crate) fn div_rem(self, d: u128) -> Option<(Self, u128)> {
        if d == 0 {
            return None;
        }
        if self.hi == 0 {
            return Some((Self::from_u128(self.lo / d), self.lo % d));
        }
        let q_hi = self.hi / d;
        let mut r = self.hi % d;
        let q_lo = if d <= LOW64 {
            // Short division in 64-bit limbs: r < d < 2^64 keeps `(r << 64) | limb` in u128.
            let mut q = 0u128;
            for limb in [self.lo >> 64, self.lo & LOW64] {
                let cur = (r << 64) | limb;
                q = (q << 64) | (cur / d);
                r = cur % d;
            }
            q
        } else {
            // Bit-by-bit long division of `r·2^128 + lo` by a divisor above 2^64: the
            // quotient fits in 128 bits because r < d.
            let mut q = 0u128;
            for bit in (0..128).rev() {
                let carry = r >> 127;
                r = (r << 1) | ((self.lo >> bit) & 1);
                // With the carry the true value is r + 2^128 ≥ d, and true − d < d fits, so
                // the wrapping subtraction gives it exactly.
                let take = carry == 1 || r >= d;
                if take {
                    r = r.wrapping_sub(d);
                }
                q = (q << 1) | u128::from(take);
            }
            q
        };
        Some((Self { hi: q_hi, lo: q_lo }, r))
    }

    /// Decimal digits, no leading zeros ("0" for zero).
    pub(crate) fn to_decimal(self) -> String {
        const CHUNK: u128 = 10_000_000_000_000_000_000; // 10^19, the largest power below 2^64
        let mut chunks = Vec::new();
        let mut rest = self;
        while rest.hi != 0 || rest.lo >= CHUNK {
            // CHUNK is not zero, so div_rem always answers.
            let Some((q, r)) = rest.div_rem(CHUNK) else {
                break;
            };
            chunks.push(r);
            rest = q;
        }
        let mut out = rest.lo.to_string();
        for chunk in chunks.iter().rev() {
            out.push_str(&format!("{chunk:019}"));
        }
        out
    }
}

/// `floor(a × b / d)` exactly, or `None` when `d == 0` or the quotient exceeds u128.
pub(crate) fn mul_div_floor(a: u128, b: u128, d: u128) -> Option<u128> {
    if let Some(product) = a.checked_mul(b) {
        return product.checked_div(d);
    }
    U256::mul(a, b).div_rem(d)?.0.to_u128()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn extremes() {
        let max = u128::MAX;
        assert_eq!(mul_div_floor(max, max, max), Some(max));
        assert_eq!(mul_div_floor(max, max - 1, max), Some(max - 1));
        assert_eq!(mul_div_floor(max, 2, 1), None);
        assert_eq!(mul_div_floor(1, 1, 0), None);
        assert_eq!(
            U256::mul(max, max).to_decimal(),
            "115792089237316195423570985008687907852589419931798687112530834793049593217025"
        );
        assert_eq!(U256::from_u128(0).to_decimal(), "0");
        assert_eq!(
            U256::from_u128(10u128.pow(19)).to_decimal(),
            "10000000000000000000"
        );
    }

    proptest! {
        #[test]
        fn division_reassembles(a: u128, b: u128, d in 1u128..) {
            let n = U256::mul(a, b);
            let (q, r) = n.div_rem(d).expect("d > 0");
            prop_assert!(r < d);
            // q·d + r == n, with q·d = q.hi·d·2^128 + q.lo·d.
            let low = U256::mul(q.lo, d).checked_add_u128(r).expect("below n");
            prop_assert_eq!(low.lo, n.lo);
            prop_assert_eq!(q.hi.checked_mul(d).and_then(|x| x.checked_add(low.hi)), Some(n.hi));
        }

        #[test]
        fn small_products_match_native(a: u64, b: u64, d in 1u128..) {
            let native = (u128::from(a) * u128::from(b)) / d;
            prop_assert_eq!(mul_div_floor(u128::from(a), u128::from(b), d), Some(native));
        }

        #[test]
        fn decimal_printing_matches_native(x: u128) {
            prop_assert_eq!(U256::from_u128(x).to_decimal(), x.to_string());
        }
    }
}
