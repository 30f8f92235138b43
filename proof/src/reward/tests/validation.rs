//! Policy validation: the example is valid; each row breaks one field and names it.

use super::*;

type Edit = fn(&mut PolicySpec);

fn split(s: &mut PolicySpec) -> &mut HotspotSplitSpec {
    s.hotspot_split.as_mut().expect("example has a split")
}

fn burn(s: &mut PolicySpec) -> &mut BurnAndMintSpec {
    s.burn_and_mint.as_mut().expect("example has burn-and-mint")
}

#[test]
fn the_example_policy_is_valid() {
    let policy = policy();
    assert_eq!(policy.epoch_seconds(), 86_400);
    assert_eq!(policy.weights().hotspot, dec("0.4"));
    assert_eq!(policy.hotspot_split().map(|s| s.witness), Some(dec("0.8")));
    assert_eq!(policy.gpu_classes().get("a100"), Some(&dec("4")));
    assert_eq!(
        policy.burn_and_mint().map(|b| b.dc_per_token),
        Some(100_000)
    );
}

#[test]
fn optional_sections_may_be_left_out() {
    let mut s = spec();
    s.hotspot_split = None;
    s.burn_and_mint = None;
    s.max_supply = Some("1".into());
    s.pools.gpu = "0".into();
    s.pools.meter = "0.3".into();
    s.gpu_classes.clear();
    let policy = RewardPolicy::validate(&s).expect("valid");
    assert!(policy.pays(Pool::Hotspot) && !policy.pays(Pool::HotspotBeacon));
}

#[test]
fn each_bad_field_is_named() {
    let rows: &[(Edit, &str, &str)] = &[
        (
            |s| s.epoch_seconds = 0,
            "epochSeconds: 0 is below 1",
            "BelowMinimum",
        ),
        (
            |s| s.token_decimals = 19,
            "token.decimals: 19 is above 18",
            "AboveMaximum",
        ),
        (
            |s| s.initial_per_epoch = "1.5".into(),
            "emission.initialPerEpoch: \"1.5\" is not a whole number of base units",
            "NotAmount",
        ),
        (
            |s| s.initial_per_epoch = "340282366920938463463374607431768211456".into(),
            "emission.initialPerEpoch: \"340282366920938463463374607431768211456\" is not a whole number of base units",
            "NotAmount",
        ),
        (
            |s| s.halving_every_epochs = 0,
            "emission.halvingEveryEpochs: 0 is below 1",
            "BelowMinimum",
        ),
        (
            |s| s.max_supply = Some("0".into()),
            "emission.maxSupply: 0 is below 1",
            "BelowMinimum",
        ),
        (
            |s| s.max_supply = Some("-5".into()),
            "emission.maxSupply: \"-5\" is not a whole number of base units",
            "NotAmount",
        ),
        (
            |s| s.pools.hotspot = "1.5".into(),
            "pools.hotspot: \"1.5\" is above 1",
            "AboveOne",
        ),
        (
            |s| s.pools.storage = "0.3x".into(),
            "pools.storage: \"0.3x\" is not a decimal number",
            "NotDecimal",
        ),
        (
            |s| s.pools.gpu = "0.2000000000000000001".into(),
            "pools.gpu: \"0.2000000000000000001\" has more than 18 decimal places",
            "TooPrecise",
        ),
        (
            |s| s.pools.meter = "0.2".into(),
            "pools: weights sum to 1.1, not 1",
            "WeightSum",
        ),
        (
            |s| s.pools.meter = "0.099999999999999999".into(),
            "pools: weights sum to 0.999999999999999999, not 1",
            "WeightSum",
        ),
        (
            |s| split(s).beacon = "2".into(),
            "subPools.hotspot.beacon: \"2\" is above 1",
            "AboveOne",
        ),
        (
            |s| split(s).witness = "0.7".into(),
            "subPools.hotspot: weights sum to 0.9, not 1",
            "WeightSum",
        ),
        (
            |s| s.gpu_classes[1].name = "T4".into(),
            "gpuClasses[1].name: \"T4\" is not a class name (1 to 63 of a-z, 0-9, -)",
            "BadName",
        ),
        (
            |s| s.gpu_classes[1].name = "a100".into(),
            "gpuClasses[1].name: \"a100\" is listed twice",
            "Duplicate",
        ),
        (
            |s| s.gpu_classes[0].weight = "four".into(),
            "gpuClasses[0].weight: \"four\" is not a decimal number",
            "NotDecimal",
        ),
        (
            |s| s.gpu_classes.clear(),
            "gpuClasses: pools.gpu is 0.2 but no GPU classes are listed",
            "NoGpuClasses",
        ),
        (
            |s| burn(s).dc_per_token = "0".into(),
            "burnAndMint.dcPerToken: 0 is below 1",
            "BelowMinimum",
        ),
        (
            |s| burn(s).smoothing_epochs = 0,
            "burnAndMint.smoothingEpochs: 0 is below 1",
            "BelowMinimum",
        ),
        (
            |s| burn(s).smoothing_epochs = 366,
            "burnAndMint.smoothingEpochs: 366 is above 365",
            "AboveMaximum",
        ),
        (
            |s| burn(s).max_remint_per_epoch = "".into(),
            "burnAndMint.maxRemintPerEpoch: \"\" is not a whole number of base units",
            "NotAmount",
        ),
        (
            |s| burn(s).max_remint_per_epoch = "0".into(),
            "burnAndMint.maxRemintPerEpoch: 0 is below 1",
            "BelowMinimum",
        ),
    ];
    for (edit, message, reason) in rows {
        let mut s = spec();
        edit(&mut s);
        let err = RewardPolicy::validate(&s).expect_err(message);
        assert_eq!(err.to_string(), *message);
        assert_eq!(err.reason(), *reason, "{message}");
        assert_eq!(message.split(':').next(), Some(err.field.as_str()));
    }
}
