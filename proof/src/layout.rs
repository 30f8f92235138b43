//! The one byte layout every signed or hashed message body uses.
//!
//! Rules (stable; changing them invalidates every stored signature):
//! - integers are fixed width and big-endian (network order, as the domain prefix in
//!   [`crate::identity::signing_bytes`]);
//! - keys, hashes and nonces are their raw 32 bytes, no prefix (their length is fixed);
//! - anything of variable length is prefixed by its length as a u32;
//! - fields appear in the order the message's doc comment lists them.
//!
//! Never serde: a serializer upgrade must not be able to change what a signature covers.

/// Builder for a message body in the layout above.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    bytes: Vec<u8>,
}

impl Layout {
    /// An empty body with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// Appends a u32, big-endian.
    pub(crate) fn u32(mut self, value: u32) -> Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a u64, big-endian.
    pub(crate) fn u64(mut self, value: u64) -> Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a u128, big-endian (work-unit totals).
    pub(crate) fn u128(mut self, value: u128) -> Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends variable-length bytes (names, labels) behind a u32 length.
    pub(crate) fn bytes(self, value: &[u8]) -> Self {
        let mut out = self.count(value.len());
        out.bytes.extend_from_slice(value);
        out
    }

    /// Appends a fixed 32-byte value (key, hash, nonce) without a prefix.
    pub(crate) fn fixed32(mut self, value: &[u8; 32]) -> Self {
        self.bytes.extend_from_slice(value);
        self
    }

    /// Appends a u32 element count; each element then follows in its own layout.
    pub(crate) fn count(self, count: usize) -> Self {
        // Counts are bounded by the policy (k leaves, s rows) long before u32::MAX;
        // saturating keeps this total without a panic path.
        self.u32(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The finished body.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_fixed_width() {
        let body = Layout::default()
            .u32(1)
            .u64(2)
            .count(3)
            .fixed32(&[9; 32])
            .finish();
        let mut want = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3];
        want.extend_from_slice(&[9; 32]);
        assert_eq!(body, want);
    }
}
