//! Beacon and witness reports, the beacon payload derivation, and the exact signed bytes.

use super::region::{BEACON_DATARATE, Region};
use crate::entropy::Entropy;
use crate::identity::{NodeKey, PublicKey};
use crate::layout::Layout;

/// Domain tag of beacon reports (signed by the beaconer's long-term key).
pub const BEACON_DOMAIN: &[u8] = b"depin/poc/beacon/v1";
/// Domain tag of witness reports (signed by the witness's long-term key).
pub const WITNESS_DOMAIN: &[u8] = b"depin/poc/witness/v1";
/// Domain tag of the beacon payload PRF.
const PAYLOAD_DOMAIN: &[u8] = b"depin/poc/payload/v1";

/// Beacon payload length. Helium `BEACON_PAYLOAD_SIZE`: 51 bytes.
pub const BEACON_PAYLOAD_SIZE: usize = 51;

/// What a beacon must contain, derived from the verifier's entropy and the beaconer's
/// local entropy; the verifier recomputes it, so nobody can choose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedBeacon {
    /// The over-the-air payload.
    pub data: Vec<u8>,
    /// The channel, picked by the payload from the region's plan (Hz).
    pub frequency_hz: u64,
    /// The LoRa data rate, e.g. `SF9BW125`.
    pub datarate: String,
}

/// Derives a beacon: `data = BLAKE3-keyed(E_t; domain || tick || beaconer || local)` read
/// to 51 bytes, `frequency = channels[LE u16(data[0..2]) mod n]`.
///
/// Helium seeds ChaCha12 with SHA-256(remote || local); a keyed BLAKE3 XOF is the same
/// idea with the hash this crate already uses. The verifier's entropy is the key, so the
/// payload is unknowable before `E_t` is issued and a witness cannot produce it without
/// hearing the beacon; the beaconer's key is an input, so one hotspot's beacon cannot be
/// claimed by another.
pub fn derive_beacon(
    entropy: &Entropy,
    local_entropy: u32,
    beaconer: &PublicKey,
    region: Region,
) -> DerivedBeacon {
    let input = Layout::with_capacity(80)
        .bytes(PAYLOAD_DOMAIN)
        .u64(entropy.tick)
        .fixed32(beaconer.as_bytes())
        .u32(local_entropy)
        .finish();
    let mut data = vec![0u8; BEACON_PAYLOAD_SIZE];
    blake3::Hasher::new_keyed(&entropy.value)
        .update(&input)
        .finalize_xof()
        .fill(&mut data);
    let channels = region.beacon_channels_hz();
    let pick = usize::from(u16::from_le_bytes([data[0], data[1]]));
    // Every plan has at least one channel (a test checks), so the modulus is non-zero.
    let frequency_hz = channels
        .get(pick % channels.len().max(1))
        .copied()
        .unwrap_or_default();
    DerivedBeacon {
        data,
        frequency_hz,
        datarate: BEACON_DATARATE.to_owned(),
    }
}

/// A beacon's identity: BLAKE3 of its payload (unique per beaconer, tick and local entropy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BeaconId(pub [u8; 32]);

impl BeaconId {
    /// The id of the beacon that carried `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// Lower-case hex, for logs and status.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A hotspot's report that it transmitted a beacon (modelled on Helium
/// `LoraBeaconReportReqV1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeaconReport {
    /// The beaconer's long-term key.
    pub beaconer: PublicKey,
    /// The verifier's entropy the payload derives from.
    pub entropy: Entropy,
    /// The beaconer's own 4 random bytes (gateway-rs draws 4 from OsRng).
    pub local_entropy: u32,
    /// The transmitted payload.
    pub data: Vec<u8>,
    /// Transmit frequency, Hz.
    pub frequency_hz: u64,
    /// LoRa data rate, e.g. `SF9BW125`.
    pub datarate: String,
    /// Conducted power actually used (after any TX_ACK adjustment), dBm × 10.
    pub tx_power_ddbm: i32,
    /// When the beacon was handed to the radio, unix ms.
    pub timestamp_ms: u64,
    /// ed25519 by `beaconer` over [`BeaconReport::signing_bytes`].
    pub signature: [u8; 64],
}

impl BeaconReport {
    /// Builds and signs the report for `derived` as transmitted.
    pub fn sign(
        key: &NodeKey,
        entropy: Entropy,
        local_entropy: u32,
        derived: DerivedBeacon,
        tx_power_ddbm: i32,
        timestamp_ms: u64,
    ) -> Self {
        let mut report = Self {
            beaconer: key.public(),
            entropy,
            local_entropy,
            data: derived.data,
            frequency_hz: derived.frequency_hz,
            datarate: derived.datarate,
            tx_power_ddbm,
            timestamp_ms,
            signature: [0; 64],
        };
        report.signature = key.sign(BEACON_DOMAIN, &report.body());
        report
    }

    /// Body: `beaconer (32) || tick u64 || E_t (32) || local u32 || data (u32 len + bytes) ||
    /// frequency u64 || datarate (u32 len + bytes) || tx_power i32 (as u32) || timestamp u64`.
    pub(crate) fn body(&self) -> Vec<u8> {
        Layout::with_capacity(200)
            .fixed32(self.beaconer.as_bytes())
            .u64(self.entropy.tick)
            .fixed32(&self.entropy.value)
            .u32(self.local_entropy)
            .bytes(&self.data)
            .u64(self.frequency_hz)
            .bytes(self.datarate.as_bytes())
            .u32(u32::from_be_bytes(self.tx_power_ddbm.to_be_bytes()))
            .u64(self.timestamp_ms)
            .finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(BEACON_DOMAIN, &self.body())
    }

    /// This beacon's id.
    pub fn id(&self) -> BeaconId {
        BeaconId::of(&self.data)
    }
}

/// A hotspot's report that it heard a beacon (modelled on Helium `LoraWitnessReportReqV1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessReport {
    /// The witness's long-term key.
    pub witness: PublicKey,
    /// The payload as received.
    pub data: Vec<u8>,
    /// When it was received, unix ms.
    pub timestamp_ms: u64,
    /// The concentrator's microsecond counter at reception (GWMP `tmst`).
    pub tmst: u32,
    /// Received signal strength, dBm × 10.
    pub signal_ddbm: i32,
    /// Signal-to-noise ratio, dB × 10.
    pub snr_ddb: i32,
    /// Received frequency, Hz.
    pub frequency_hz: u64,
    /// LoRa data rate as received.
    pub datarate: String,
    /// ed25519 by `witness` over [`WitnessReport::signing_bytes`].
    pub signature: [u8; 64],
}

impl WitnessReport {
    /// Builds and signs a report; set the fields, then call this with `signature` ignored.
    pub fn sign(key: &NodeKey, unsigned: WitnessReport) -> Self {
        let mut report = Self {
            witness: key.public(),
            ..unsigned
        };
        report.signature = key.sign(WITNESS_DOMAIN, &report.body());
        report
    }

    /// Body: `witness (32) || data (u32 len + bytes) || timestamp u64 || tmst u32 ||
    /// signal i32 (as u32) || snr i32 (as u32) || frequency u64 || datarate (u32 len + bytes)`.
    pub(crate) fn body(&self) -> Vec<u8> {
        Layout::with_capacity(150)
            .fixed32(self.witness.as_bytes())
            .bytes(&self.data)
            .u64(self.timestamp_ms)
            .u32(self.tmst)
            .u32(u32::from_be_bytes(self.signal_ddbm.to_be_bytes()))
            .u32(u32::from_be_bytes(self.snr_ddb.to_be_bytes()))
            .u64(self.frequency_hz)
            .bytes(self.datarate.as_bytes())
            .finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(WITNESS_DOMAIN, &self.body())
    }

    /// The id of the beacon this report claims to have heard.
    pub fn beacon_id(&self) -> BeaconId {
        BeaconId::of(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::{Beacon, EntropyConfig};

    #[test]
    fn payload_binds_entropy_beaconer_and_local_entropy() {
        let beacon = Beacon::new([1; 32], EntropyConfig::default());
        let (a, b) = (
            NodeKey::from_seed([1; 32]).public(),
            NodeKey::from_seed([2; 32]).public(),
        );
        let base = derive_beacon(&beacon.entropy(5), 1, &a, Region::EU868);
        assert_eq!(base.data.len(), BEACON_PAYLOAD_SIZE);
        assert!(
            Region::EU868
                .beacon_channels_hz()
                .contains(&base.frequency_hz)
        );
        for other in [
            derive_beacon(&beacon.entropy(6), 1, &a, Region::EU868),
            derive_beacon(&beacon.entropy(5), 2, &a, Region::EU868),
            derive_beacon(&beacon.entropy(5), 1, &b, Region::EU868),
        ] {
            assert_ne!(base.data, other.data);
        }
    }
}
