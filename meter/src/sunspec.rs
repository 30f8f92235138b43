//! SunSpec register maps, decoded from plain register words (no I/O here).
//!
//! A SunSpec device starts with the marker "SunS" at a base address (40000 by convention,
//! 0 or 50000 on some devices), then a chain of models, each `ID, L, L registers of body`,
//! ended by ID 0xFFFF. Offsets below are from each model's first register (its ID) and
//! match the SunSpec model definitions shipped with pysunspec2 (model_1.json,
//! model_10x.json, model_20x.json).

use crate::MeterError;

/// "SunS" as two big-endian registers.
pub const SUNS_MARKER: [u16; 2] = [0x5375, 0x6e53];
/// Where the marker may sit, in the order devices most often use.
pub const BASE_ADDRESSES: [u16; 3] = [40000, 0, 50000];
/// The ID that ends the model chain.
pub const END_MODEL_ID: u16 = 0xffff;
/// Common model (manufacturer, model, serial).
pub const COMMON_MODEL: u16 = 1;

/// SunSpec "not implemented" value of int16 and sunssf points (0xFFFF is a valid −1 there).
const NOT_IMPLEMENTED_INT16: u16 = 0x8000;

/// One model in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelHeader {
    /// Model ID (1 common, 101–103 inverter, 201–204 meter, …).
    pub id: u16,
    /// Address of the model's ID register.
    pub address: u16,
    /// Body length in registers (the `L` register).
    pub length: u16,
}

/// What the common model says about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonModel {
    /// `Mn`: manufacturer.
    pub manufacturer: String,
    /// `Md`: model.
    pub model: String,
    /// `SN`: serial number.
    pub serial: String,
}

/// Which energy register counts: what the device produced or what it consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Inverter `WH`, or meter `TotWhExp` (energy exported by a production meter).
    #[default]
    Production,
    /// Meter `TotWhImp` (an inverter has no import register).
    Consumption,
}

/// Power and energy decoded from an inverter or meter model, scale factors applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerAndEnergy {
    /// Real power, W (magnitude: meters sign it by flow direction).
    pub watts: f64,
    /// Cumulative energy register, Wh.
    pub wh_total: u64,
}

/// The kind of power model a device carries, and where its points sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PowerLayout {
    w: usize,
    w_sf: usize,
    wh_production: usize,
    wh_consumption: Option<usize>,
    wh_sf: usize,
    /// Registers from the ID through the last point used.
    needed: usize,
}

/// Inverter models 101–103 (integer + scale factor): W@14, W_SF@15, WH@24 (acc32), WH_SF@26.
const INVERTER: PowerLayout = PowerLayout {
    w: 14,
    w_sf: 15,
    wh_production: 24,
    wh_consumption: None,
    wh_sf: 26,
    needed: 27,
};
/// Meter models 201–204: W@18, W_SF@22, TotWhExp@38, TotWhImp@46 (acc32), TotWh_SF@54.
const METER: PowerLayout = PowerLayout {
    w: 18,
    w_sf: 22,
    wh_production: 38,
    wh_consumption: Some(46),
    wh_sf: 54,
    needed: 55,
};

fn power_layout(id: u16) -> Option<PowerLayout> {
    match id {
        101..=103 => Some(INVERTER),
        201..=204 => Some(METER),
        _ => None,
    }
}

/// Whether `id` is a power model this crate decodes (inverter 101–103, meter 201–204).
pub fn is_power_model(id: u16) -> bool {
    power_layout(id).is_some()
}

/// Registers (from the ID register) that [`decode_power`] needs for model `id`.
pub fn power_registers_needed(id: u16) -> Option<u16> {
    power_layout(id).and_then(|l| u16::try_from(l.needed).ok())
}

/// Registers (from the ID register) [`decode_common`] needs: ID, L, Mn, Md, Opt, Vr, SN.
pub const COMMON_REGISTERS_NEEDED: u16 = 66;

/// Decodes a SunSpec string: two ASCII bytes per register, NUL-padded.
pub fn decode_string(regs: &[u16]) -> String {
    let bytes: Vec<u8> = regs.iter().flat_map(|r| r.to_be_bytes()).collect();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_owned()
}

/// Decodes the common model from registers starting at its ID register.
pub fn decode_common(regs: &[u16]) -> Result<CommonModel, MeterError> {
    if regs.len() < usize::from(COMMON_REGISTERS_NEEDED) || regs[0] != COMMON_MODEL {
        return Err(MeterError::Parse(
            "common model 1 is too short or missing".into(),
        ));
    }
    Ok(CommonModel {
        manufacturer: decode_string(&regs[2..18]),
        model: decode_string(&regs[18..34]),
        serial: decode_string(&regs[50..66]),
    })
}

/// Decodes W and the cumulative energy register of model `regs[0]`, registers starting at
/// its ID register.
pub fn decode_power(regs: &[u16], direction: Direction) -> Result<PowerAndEnergy, MeterError> {
    let id = regs.first().copied().unwrap_or(0);
    let layout = power_layout(id)
        .ok_or_else(|| MeterError::Parse(format!("model {id} is not an inverter or meter")))?;
    if regs.len() < layout.needed {
        return Err(MeterError::Parse(format!(
            "model {id}: {} registers, need {}",
            regs.len(),
            layout.needed
        )));
    }
    let raw_w = regs[layout.w];
    if raw_w == NOT_IMPLEMENTED_INT16 {
        return Err(MeterError::NotImplemented("W"));
    }
    let watts = f64::from(raw_w as i16).abs() * scale(regs[layout.w_sf], "W_SF")?;
    let wh_at = match direction {
        Direction::Production => layout.wh_production,
        Direction::Consumption => layout
            .wh_consumption
            .ok_or(MeterError::NotImplemented("TotWhImp"))?,
    };
    let raw_wh = (u32::from(regs[wh_at]) << 16) | u32::from(regs[wh_at + 1]);
    // acc32 uses 0 for "not implemented", which is also a legal fresh register: accept it.
    let wh = f64::from(raw_wh) * scale(regs[layout.wh_sf], "WH_SF")?;
    Ok(PowerAndEnergy {
        watts,
        // Registers are whole numbers times a power of ten; floor keeps the total monotonic.
        wh_total: wh.floor() as u64,
    })
}

/// `10^sf` for a `sunssf` register; SunSpec bounds scale factors to −10..=10.
fn scale(raw: u16, point: &'static str) -> Result<f64, MeterError> {
    if raw == NOT_IMPLEMENTED_INT16 {
        return Err(MeterError::NotImplemented(point));
    }
    let sf = raw as i16;
    if !(-10..=10).contains(&sf) {
        return Err(MeterError::Parse(format!(
            "{point} = {sf} is outside -10..=10"
        )));
    }
    Ok(10f64.powi(i32::from(sf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_regs(text: &str, len: usize) -> Vec<u16> {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(len * 2, 0);
        bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn common_model_strings() {
        let mut regs = vec![1, 66];
        regs.extend(string_regs("DePIN-Labs", 16));
        regs.extend(string_regs("PV-5", 16));
        regs.extend(string_regs("", 8));
        regs.extend(string_regs("1.0", 8));
        regs.extend(string_regs("SN-42", 16));
        let common = decode_common(&regs).expect("decodes");
        assert_eq!(common.manufacturer, "DePIN-Labs");
        assert_eq!(common.model, "PV-5");
        assert_eq!(common.serial, "SN-42");
        assert!(decode_common(&regs[..10]).is_err());
    }

    #[test]
    fn inverter_and_meter_scale_factors() {
        let mut inv = vec![0u16; 27];
        inv[0] = 103;
        inv[14] = 2830;
        inv[15] = (-1i16) as u16; // 283.0 W
        inv[24] = 0x0001;
        inv[25] = 0x0000; // 65536
        inv[26] = 1; // × 10 Wh
        let got = decode_power(&inv, Direction::Production).expect("decodes");
        assert!((got.watts - 283.0).abs() < 1e-9);
        assert_eq!(got.wh_total, 655_360);
        assert!(decode_power(&inv, Direction::Consumption).is_err());

        let mut meter = vec![0u16; 55];
        meter[0] = 203;
        meter[18] = (-1500i16) as u16;
        meter[22] = 0;
        meter[39] = 1234; // exported
        meter[47] = 99; // imported
        meter[54] = 0;
        let got = decode_power(&meter, Direction::Production).expect("decodes");
        assert_eq!((got.watts, got.wh_total), (1500.0, 1234));
        let got = decode_power(&meter, Direction::Consumption).expect("decodes");
        assert_eq!(got.wh_total, 99);
        meter[22] = 0x8000;
        assert!(matches!(
            decode_power(&meter, Direction::Production),
            Err(MeterError::NotImplemented("W_SF"))
        ));
    }
}
