//! A meter's chain tip and serial claim as kept in its MeterBridge's `status.meter`, and
//! back. Written with the tally of every reading (one status write), read back before a
//! restarted verifier judges any reading, so neither a register rollback across a
//! restart nor a serial squatter speaking first afterwards is accepted.

use depin_crds::{MeterRecord, MeterTip, SerialClaim as ClaimStatus};
use depin_proof::identity::PublicKey;
use depin_proof::meter::{ChainTip, DayYield, MeterChain, SerialClaim};

/// The record of `node`'s chain and claim (None before its first accepted reading).
pub fn to_status(chain: &MeterChain, claim: Option<&SerialClaim>) -> Option<MeterRecord> {
    let tip = chain.tip.as_ref()?;
    Some(MeterRecord {
        serial_claim: claim.map(|c| ClaimStatus {
            serial: c.serial.clone(),
            claimed_at_ms: c.claimed_at_ms,
        }),
        tip: Some(MeterTip {
            seq: tip.seq,
            slot: tip.slot,
            cumulative_wh: tip.cumulative_wh,
            hash: hex::encode(tip.hash),
            meter_serial: tip.meter_serial.clone(),
            day: chain.day.map(|d| d.day),
            day_credited_wh: chain.day.map_or(0, |d| d.credited_wh),
            day_bound_wh: chain.day.map_or(0, |d| d.bound_wh),
        }),
    })
}

/// What a restarted verifier takes back from `node`'s record: its chain (tip and solar
/// day) and its serial claim. Err names the field that does not parse.
pub fn from_status(
    node: PublicKey,
    record: &MeterRecord,
) -> Result<(Option<MeterChain>, Option<SerialClaim>), String> {
    let chain = match &record.tip {
        None => None,
        Some(tip) => {
            let hash: [u8; 32] = hex::decode(&tip.hash)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or("status.meter.tip.hash: not 64 hex digits")?;
            Some(MeterChain {
                tip: Some(ChainTip {
                    seq: tip.seq,
                    slot: tip.slot,
                    cumulative_wh: tip.cumulative_wh,
                    hash,
                    meter_serial: tip.meter_serial.clone(),
                }),
                day: tip.day.map(|day| DayYield {
                    day,
                    credited_wh: tip.day_credited_wh,
                    bound_wh: tip.day_bound_wh,
                }),
                ..MeterChain::default()
            })
        }
    };
    let claim = record.serial_claim.as_ref().map(|c| SerialClaim {
        serial: c.serial.clone(),
        node,
        claimed_at_ms: c.claimed_at_ms,
    });
    Ok((chain, claim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::identity::NodeKey;

    #[test]
    fn a_record_round_trips_and_a_bad_hash_is_named() {
        let node = NodeKey::from_seed([3; 32]).public();
        let chain = MeterChain {
            tip: Some(ChainTip {
                seq: 7,
                slot: 99,
                cumulative_wh: 12_345,
                hash: [9; 32],
                meter_serial: "SN-1".into(),
            }),
            day: Some(DayYield {
                day: 20_000,
                credited_wh: 500,
                bound_wh: 9_000,
            }),
            ..MeterChain::default()
        };
        let claim = SerialClaim {
            serial: "SN-1".into(),
            node,
            claimed_at_ms: 1_000,
        };
        let record = to_status(&chain, Some(&claim)).expect("a tip");
        assert_eq!(from_status(node, &record), Ok((Some(chain), Some(claim))));
        assert_eq!(to_status(&MeterChain::default(), None), None);
        let mut bad = record;
        bad.tip.as_mut().expect("tip").hash = "zz".into();
        let err = from_status(node, &bad).expect_err("bad hash");
        assert!(err.contains("status.meter.tip.hash"), "{err}");
    }
}
