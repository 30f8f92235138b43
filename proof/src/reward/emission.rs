//! What an epoch mints: the halving schedule (capped by max supply) plus re-minted burn.

use super::policy::{BurnAndMint, EmissionSchedule};
use super::wide::mul_div_floor;

/// After this many halvings any u128 emission has shifted down to zero.
const HALVINGS_TO_ZERO: u64 = 128;

/// Data credits burned for usage (packets, storage deals, jobs) during one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochBurn {
    /// The epoch the burn happened in.
    pub epoch: u64,
    /// Data credits burned; several records for one epoch add up.
    pub dc_burned: u64,
}

impl EmissionSchedule {
    /// `initial >> floor(epoch / halving)`, ignoring the max-supply cap.
    pub fn uncapped(&self, epoch: u64) -> u128 {
        // Validation keeps the interval ≥ 1; an unvalidated 0 reads as "halved away".
        let halvings = epoch
            .checked_div(self.halving_every_epochs)
            .unwrap_or(HALVINGS_TO_ZERO);
        match u32::try_from(halvings) {
            Ok(shift) => self.initial_per_epoch.checked_shr(shift).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Σ uncapped emission of epochs `0..epoch`, saturating at u128::MAX (only ever
    /// compared against a cap, which a saturated total is past).
    pub fn uncapped_total_before(&self, epoch: u64) -> u128 {
        let interval = self.halving_every_epochs.max(1);
        let (full, partial) = (epoch / interval, epoch % interval);
        let mut total = 0u128;
        // Each full halving period contributes interval × (initial >> k); after 128 of
        // them the rest is zero, so the loop is short however large the epoch.
        for k in 0..full.min(HALVINGS_TO_ZERO) {
            let per_epoch = self.initial_per_epoch >> k;
            total = total.saturating_add(per_epoch.saturating_mul(interval.into()));
        }
        if full < HALVINGS_TO_ZERO {
            let per_epoch = self.initial_per_epoch >> full;
            total = total.saturating_add(per_epoch.saturating_mul(partial.into()));
        }
        total
    }

    /// Scheduled emission of `epoch`: the halving schedule, except that cumulative emission
    /// never passes `max_supply` (the epoch that crosses it gets the remainder, later
    /// epochs nothing).
    pub fn scheduled(&self, epoch: u64) -> u128 {
        let uncapped = self.uncapped(epoch);
        match self.max_supply {
            Some(cap) => uncapped.min(cap.saturating_sub(self.uncapped_total_before(epoch))),
            None => uncapped,
        }
    }
}

impl BurnAndMint {
    /// Base units worth `dc` data credits at the fixed rate, floored; saturates (a burn
    /// that large is capped long before it is re-minted).
    pub fn dc_to_base_units(&self, dc: u128, token_decimals: u8) -> u128 {
        let one_token = 10u128.pow(token_decimals.into());
        mul_div_floor(dc, one_token, self.dc_per_token).unwrap_or(u128::MAX)
    }

    /// Base units re-minted in `epoch`: the simple moving average of the burns of the
    /// `smoothing_epochs` epochs before it, capped at `max_remint_per_epoch`.
    ///
    /// Why a moving average over a fixed window rather than Helium's exponential
    /// smoothing (`target = yesterday·6/7 + today/7`, research §5.1): both damp a burn
    /// spike, but the window re-mints each burned credit in exactly W later epochs, so over
    /// time re-mint equals burn (the burn-and-mint equilibrium `burn = mint` of §5.2),
    /// while an EMA never finishes re-minting and carries state that every epoch depends
    /// on. Here the output depends only on the last W epochs' burns, which the last W
    /// RewardEpoch objects record, so any epoch can be recomputed from published data.
    /// Only burns of earlier epochs count: epoch `e`'s own burn is not final until `e`
    /// closes (as `burn_{e-1}` in §5.4). Burn above the cap, and the flooring dust, stay
    /// burned, as in Helium's net-emissions cap.
    pub fn remint(&self, epoch: u64, token_decimals: u8, burns: &[EpochBurn]) -> u128 {
        let window = self.smoothing_epochs.max(1);
        let first = epoch.saturating_sub(window);
        let dc: u128 = burns
            .iter()
            .filter(|b| (first..epoch).contains(&b.epoch))
            .fold(0u128, |sum, b| sum.saturating_add(b.dc_burned.into()));
        // floor(floor(x / a) / b) == floor(x / (a·b)): one exact average, no per-epoch dust.
        let average = self.dc_to_base_units(dc, token_decimals) / u128::from(window);
        average.min(self.max_remint_per_epoch)
    }
}

/// Data credits burned during exactly `epoch`.
pub(crate) fn dc_burned_in(epoch: u64, burns: &[EpochBurn]) -> u128 {
    burns
        .iter()
        .filter(|b| b.epoch == epoch)
        .fold(0u128, |sum, b| sum.saturating_add(b.dc_burned.into()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn schedule(initial: u128, halving: u64, cap: Option<u128>) -> EmissionSchedule {
        EmissionSchedule {
            initial_per_epoch: initial,
            halving_every_epochs: halving,
            max_supply: cap,
        }
    }

    #[test]
    fn halves_exactly_at_the_interval() {
        let s = schedule(1000, 3, None);
        let got: Vec<u128> = (0..10).map(|e| s.scheduled(e)).collect();
        assert_eq!(got, [1000, 1000, 1000, 500, 500, 500, 250, 250, 250, 125]);
        assert_eq!(s.scheduled(3 * 128), 0);
        assert_eq!(s.scheduled(u64::MAX), 0);
        assert_eq!(schedule(u128::MAX, 1, None).scheduled(127), 1);
    }

    #[test]
    fn the_epoch_crossing_the_cap_gets_the_remainder() {
        let s = schedule(1000, 2, Some(2600));
        let got: Vec<u128> = (0..6).map(|e| s.scheduled(e)).collect();
        // 1000 + 1000 + 500 = 2500, then 100 of the next 500, then nothing.
        assert_eq!(got, [1000, 1000, 500, 100, 0, 0]);
    }

    #[test]
    fn remint_averages_the_window_and_caps() {
        let bm = BurnAndMint {
            dc_per_token: 100_000, // Helium: 1 DC = $0.00001, so 10^5 DC per $1 token
            smoothing_epochs: 4,
            max_remint_per_epoch: 1_000_000,
        };
        let burns = [
            EpochBurn {
                epoch: 1,
                dc_burned: 100_000,
            },
            EpochBurn {
                epoch: 1,
                dc_burned: 100_000,
            },
            EpochBurn {
                epoch: 3,
                dc_burned: 200_000,
            },
            EpochBurn {
                epoch: 9,
                dc_burned: 7,
            },
        ];
        // 6 decimals: 400 000 DC = 4 tokens = 4 000 000 base units, over 4 epochs.
        assert_eq!(bm.dc_to_base_units(400_000, 6), 4_000_000);
        assert_eq!(
            bm.remint(1, 6, &burns),
            0,
            "epoch 1's own burn is not yet final"
        );
        assert_eq!(bm.remint(2, 6, &burns), 500_000);
        assert_eq!(bm.remint(4, 6, &burns), 1_000_000);
        assert_eq!(
            bm.remint(5, 6, &burns),
            1_000_000,
            "window 1..5 still holds both"
        );
        assert_eq!(bm.remint(6, 6, &burns), 500_000, "epoch 1 left the window");
        let capped = BurnAndMint {
            max_remint_per_epoch: 600_000,
            ..bm
        };
        assert_eq!(capped.remint(4, 6, &burns), 600_000);
        assert_eq!(dc_burned_in(1, &burns), 200_000);
    }

    proptest! {
        #[test]
        fn halving_happens_exactly_at_the_configured_epoch(
            initial in 1u128..u128::MAX, halving in 1u64..10_000, k in 0u64..100,
        ) {
            let s = schedule(initial, halving, None);
            let boundary = k * halving;
            prop_assert_eq!(s.scheduled(boundary), initial >> k);
            prop_assert_eq!(s.scheduled(boundary + halving - 1), initial >> k);
            prop_assert_eq!(s.scheduled(boundary + halving), initial >> (k + 1));
        }

        #[test]
        fn cumulative_emission_never_passes_the_cap(
            initial in 0u128..1_000_000, halving in 1u64..8, cap in 1u128..20_000_000,
        ) {
            let s = schedule(initial, halving, Some(cap));
            let mut total = 0u128;
            for e in 0..200 {
                total += s.scheduled(e);
                prop_assert!(total <= cap);
                prop_assert_eq!(s.uncapped_total_before(e + 1),
                    (0..=e).map(|j| s.uncapped(j)).sum::<u128>());
            }
            // Either the cap is reached, or the whole uncapped schedule fit under it.
            prop_assert!(total == cap || total == s.uncapped_total_before(200));
        }
    }
}
