//! LoRaWAN regional plans: the channels a beacon may use and the most power it may use.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The LoRa data rate beacons are sent at. SF9/125 kHz carries the 51-byte payload in every
/// plan below (LoRaWAN RP002 max payload at SF9BW125: 53 bytes in US915, 115 in EU868),
/// so one value serves all regions.
pub const BEACON_DATARATE: &str = "SF9BW125";

/// A LoRaWAN regional parameter plan (names as Helium and the HotspotGateway CRD use them).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// Europe 863–870 MHz.
    EU868,
    /// United States 902–928 MHz.
    US915,
    /// Australia 915–928 MHz.
    AU915,
    /// Asia 923 MHz, group 1.
    AS923_1,
    /// Asia 923 MHz, group 2.
    AS923_2,
    /// Asia 923 MHz, group 3.
    AS923_3,
    /// Asia 923 MHz, group 4.
    AS923_4,
    /// China 470–510 MHz.
    CN470,
    /// South Korea 920–923 MHz.
    KR920,
    /// India 865–867 MHz.
    IN865,
    /// Russia 864–870 MHz.
    RU864,
    /// Europe 433 MHz.
    EU433,
}

/// A region name that is not one of [`Region::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown LoRaWAN region {0:?}")]
pub struct UnknownRegion(pub String);

/// Eight channels `first + k × 200 kHz`, the usual 8-channel gateway plan.
const fn eight_from(first_hz: u64) -> [u64; 8] {
    let mut out = [0; 8];
    let mut k = 0;
    while k < 8 {
        out[k] = first_hz + k as u64 * 200_000;
        k += 1;
    }
    out
}

// Channel plans: LoRaWAN Regional Parameters RP002-1.0.3; for the wide US/AU/CN plans the
// 8-channel sub-band Helium gateways listen on (US915/AU915 sub-band 2).
const EU868: [u64; 8] = [
    868_100_000,
    868_300_000,
    868_500_000,
    867_100_000,
    867_300_000,
    867_500_000,
    867_700_000,
    867_900_000,
];
const US915: [u64; 8] = eight_from(903_900_000);
const AU915: [u64; 8] = eight_from(916_800_000);
const AS923_1: [u64; 8] = eight_from(923_200_000);
// AS923-2/3/4 are AS923-1 shifted by -1.8, -6.6 and -5.9 MHz (RP002 §2.8.2).
const AS923_2: [u64; 8] = eight_from(921_400_000);
const AS923_3: [u64; 8] = eight_from(916_600_000);
const AS923_4: [u64; 8] = eight_from(917_300_000);
const CN470: [u64; 8] = eight_from(486_300_000);
const KR920: [u64; 7] = [
    922_100_000,
    922_300_000,
    922_500_000,
    922_700_000,
    922_900_000,
    923_100_000,
    923_300_000,
];
const IN865: [u64; 3] = [865_062_500, 865_402_500, 865_985_000];
const RU864: [u64; 2] = [868_900_000, 869_100_000];
const EU433: [u64; 3] = [433_175_000, 433_375_000, 433_575_000];

impl Region {
    /// Every plan, for parsing and tests.
    pub const ALL: [Region; 12] = [
        Region::EU868,
        Region::US915,
        Region::AU915,
        Region::AS923_1,
        Region::AS923_2,
        Region::AS923_3,
        Region::AS923_4,
        Region::CN470,
        Region::KR920,
        Region::IN865,
        Region::RU864,
        Region::EU433,
    ];

    /// The name as the CRD and Helium write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Region::EU868 => "EU868",
            Region::US915 => "US915",
            Region::AU915 => "AU915",
            Region::AS923_1 => "AS923_1",
            Region::AS923_2 => "AS923_2",
            Region::AS923_3 => "AS923_3",
            Region::AS923_4 => "AS923_4",
            Region::CN470 => "CN470",
            Region::KR920 => "KR920",
            Region::IN865 => "IN865",
            Region::RU864 => "RU864",
            Region::EU433 => "EU433",
        }
    }

    /// The channels (Hz) a beacon in this plan is sent on.
    pub const fn beacon_channels_hz(self) -> &'static [u64] {
        match self {
            Region::EU868 => &EU868,
            Region::US915 => &US915,
            Region::AU915 => &AU915,
            Region::AS923_1 => &AS923_1,
            Region::AS923_2 => &AS923_2,
            Region::AS923_3 => &AS923_3,
            Region::AS923_4 => &AS923_4,
            Region::CN470 => &CN470,
            Region::KR920 => &KR920,
            Region::IN865 => &IN865,
            Region::RU864 => &RU864,
            Region::EU433 => &EU433,
        }
    }

    /// Beacon transmit power in dBm: the plan's default max EIRP (LoRaWAN RP002-1.0.3;
    /// gateway-rs beacons at the region's max power).
    pub const fn beacon_power_dbm(self) -> i32 {
        match self {
            Region::US915 | Region::AU915 | Region::IN865 => 30,
            Region::CN470 => 19,
            Region::KR920 => 14,
            Region::EU433 => 12,
            Region::EU868
            | Region::AS923_1
            | Region::AS923_2
            | Region::AS923_3
            | Region::AS923_4
            | Region::RU864 => 16,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| UnknownRegion(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_plans_are_non_empty() {
        for region in Region::ALL {
            assert_eq!(region.as_str().parse::<Region>(), Ok(region));
            assert!(!region.beacon_channels_hz().is_empty());
        }
        assert_eq!(US915[7], 905_300_000);
        assert!("XX999".parse::<Region>().is_err());
    }
}
