//! The Modbus TCP side: connect, discover the SunSpec map once, read power and energy.

use std::time::Duration;

use tokio_modbus::client::{Context, Reader as _};
use tokio_modbus::prelude::{Slave, tcp};

use crate::MeterError;
use crate::sunspec::{
    BASE_ADDRESSES, COMMON_MODEL, COMMON_REGISTERS_NEEDED, CommonModel, Direction, END_MODEL_ID,
    ModelHeader, SUNS_MARKER, decode_common, decode_power, is_power_model, power_registers_needed,
};

/// Default per-request timeout: long enough for a Modbus gateway in front of an RS-485
/// bus, short enough that a dead device fails within one reading interval.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most registers one Modbus read may ask for (Modbus application protocol v1.1b3 §6.3).
const MAX_REGISTERS_PER_READ: u16 = 125;
/// Longest model chain walked: real devices carry a handful; this bounds a corrupt chain.
const MAX_MODELS: usize = 64;

/// One reading of the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Serial number (common model `SN`).
    pub serial: String,
    /// Manufacturer (common model `Mn`).
    pub manufacturer: String,
    /// Device model (common model `Md`).
    pub model: String,
    /// Real power, W.
    pub watts: f64,
    /// Cumulative energy register, Wh.
    pub wh_total: u64,
}

/// Where the device's models sit, found once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMap {
    /// Address of the "SunS" marker.
    pub base: u16,
    /// Every model in chain order.
    pub models: Vec<ModelHeader>,
    /// The common model's content.
    pub common: CommonModel,
    /// The inverter or meter model read for power and energy (the first one found).
    pub power: ModelHeader,
}

/// A connection to one SunSpec device.
pub struct SunSpecReader {
    ctx: Context,
    timeout: Duration,
    direction: Direction,
    map: Option<DeviceMap>,
}

impl std::fmt::Debug for SunSpecReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SunSpecReader")
            .field("timeout", &self.timeout)
            .field("direction", &self.direction)
            .field("map", &self.map)
            .finish_non_exhaustive()
    }
}

impl SunSpecReader {
    /// Connects to `address` (`host:port`) and talks to Modbus unit `unit_id`.
    pub async fn connect(
        address: &str,
        unit_id: u8,
        direction: Direction,
        timeout: Duration,
    ) -> Result<Self, MeterError> {
        let connect_error = |source| MeterError::Connect {
            address: address.to_owned(),
            source,
        };
        let dial = async {
            let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
            for socket in tokio::net::lookup_host(address).await? {
                match tcp::connect_slave(socket, Slave(unit_id)).await {
                    Ok(ctx) => return Ok(ctx),
                    Err(e) => last = e,
                }
            }
            Err(last)
        };
        let ctx = tokio::time::timeout(timeout, dial)
            .await
            .map_err(|_| MeterError::Timeout(timeout))?
            .map_err(connect_error)?;
        Ok(Self {
            ctx,
            timeout,
            direction,
            map: None,
        })
    }

    /// The device map, discovering it on first use.
    pub async fn discover(&mut self) -> Result<&DeviceMap, MeterError> {
        if self.map.is_none() {
            let map = self.walk().await?;
            tracing::debug!(?map, "discovered SunSpec device");
            self.map = Some(map);
        }
        // Set just above when it was missing.
        self.map.as_ref().ok_or(MeterError::NoCommonModel)
    }

    /// Reads power and energy (discovering the map on first use).
    pub async fn read(&mut self) -> Result<Reading, MeterError> {
        let map = self.discover().await?.clone();
        let needed = power_registers_needed(map.power.id).unwrap_or(0);
        let regs = self.read_registers(map.power.address, needed).await?;
        let power = decode_power(&regs, self.direction)?;
        Ok(Reading {
            serial: map.common.serial,
            manufacturer: map.common.manufacturer,
            model: map.common.model,
            watts: power.watts,
            wh_total: power.wh_total,
        })
    }

    async fn walk(&mut self) -> Result<DeviceMap, MeterError> {
        let base = self.find_base().await?;
        let mut models = Vec::new();
        let mut address = base.checked_add(2).ok_or(MeterError::NotSunSpec)?;
        while models.len() < MAX_MODELS {
            let header = self.read_registers(address, 2).await?;
            let (id, length) = (header[0], header[1]);
            if id == END_MODEL_ID {
                break;
            }
            models.push(ModelHeader {
                id,
                address,
                length,
            });
            address = address
                .checked_add(2)
                .and_then(|a| a.checked_add(length))
                .ok_or_else(|| MeterError::Parse(format!("model {id} runs past register 65535")))?;
        }
        let common_at = models
            .iter()
            .find(|m| m.id == COMMON_MODEL)
            .ok_or(MeterError::NoCommonModel)?
            .address;
        let power = *models
            .iter()
            .find(|m| is_power_model(m.id))
            .ok_or_else(|| MeterError::NoPowerModel(models.iter().map(|m| m.id).collect()))?;
        let common = decode_common(
            &self
                .read_registers(common_at, COMMON_REGISTERS_NEEDED)
                .await?,
        )?;
        Ok(DeviceMap {
            base,
            models,
            common,
            power,
        })
    }

    async fn find_base(&mut self) -> Result<u16, MeterError> {
        for base in BASE_ADDRESSES {
            match self.read_registers(base, 2).await {
                Ok(regs) if regs == SUNS_MARKER => return Ok(base),
                // An exception (illegal address) or other content: try the next base.
                Ok(_) | Err(MeterError::Exception { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Err(MeterError::NotSunSpec)
    }

    /// Reads `count` holding registers from `address`, in requests of at most 125.
    async fn read_registers(&mut self, address: u16, count: u16) -> Result<Vec<u16>, MeterError> {
        let mut out = Vec::with_capacity(usize::from(count));
        let mut at = address;
        let mut left = count;
        while left > 0 {
            let chunk = left.min(MAX_REGISTERS_PER_READ);
            let answer =
                tokio::time::timeout(self.timeout, self.ctx.read_holding_registers(at, chunk))
                    .await
                    .map_err(|_| MeterError::Timeout(self.timeout))?
                    .map_err(|e| MeterError::Transport(e.to_string()))?
                    .map_err(|code| MeterError::Exception {
                        address: at,
                        count: chunk,
                        code: format!("{code:?}"),
                    })?;
            if answer.len() != usize::from(chunk) {
                return Err(MeterError::Parse(format!(
                    "asked {chunk} registers at {at}, got {}",
                    answer.len()
                )));
            }
            out.extend(answer);
            left -= chunk;
            at = at.wrapping_add(chunk);
        }
        Ok(out)
    }
}
