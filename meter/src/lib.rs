//! Reads a SunSpec device (PV inverter or energy meter) over Modbus TCP: finds the "SunS"
//! marker, walks the model chain, and decodes the serial number (common model 1), real
//! power and the cumulative energy register (inverter 101–103 or meter 201–204, scale
//! factors applied). The meter role of the agent polls [`SunSpecReader::read`] and feeds
//! the result into the signed reading chain (`depin_proof::meter`).

#![warn(missing_docs)]

mod reader;
pub mod sunspec;

pub use reader::{DEFAULT_TIMEOUT, DeviceMap, Reading, SunSpecReader};
pub use sunspec::Direction;

use thiserror::Error;

/// Why a meter could not be read, grouped by what the caller can do about it.
#[derive(Debug, Error)]
pub enum MeterError {
    /// The TCP connection could not be made (retry later; check host and port).
    #[error("connecting to {address}: {source}")]
    Connect {
        /// The address dialled.
        address: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// A request got no answer in time (retry; the device may be busy or gone).
    #[error("no Modbus answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection or the Modbus framing failed (reconnect).
    #[error("Modbus transport: {0}")]
    Transport(String),
    /// The device answered with a Modbus exception (wrong unit id or address).
    #[error("Modbus exception reading {count} registers at {address}: {code}")]
    Exception {
        /// First register requested.
        address: u16,
        /// Registers requested.
        count: u16,
        /// The exception the device returned.
        code: String,
    },
    /// No "SunS" marker at any of the usual base addresses (not a SunSpec device).
    #[error("no SunSpec marker at 40000, 0 or 50000")]
    NotSunSpec,
    /// The device has no common model 1 (so no serial number).
    #[error("SunSpec device has no common model 1")]
    NoCommonModel,
    /// The device has no inverter (101–103) or meter (201–204) model.
    #[error("SunSpec device has no inverter (101-103) or meter (201-204) model; found {0:?}")]
    NoPowerModel(Vec<u16>),
    /// A point the reading needs is marked "not implemented" by the device.
    #[error("SunSpec point {0} is not implemented by the device")]
    NotImplemented(&'static str),
    /// The registers do not form a valid SunSpec map.
    #[error("SunSpec map: {0}")]
    Parse(String),
}

impl MeterError {
    /// Short label for metrics (`meter_read_errors_total{error}`) and events.
    pub fn kind(&self) -> &'static str {
        match self {
            MeterError::Connect { .. } => "connect",
            MeterError::Timeout(_) => "modbus_timeout",
            MeterError::Transport(_) => "transport",
            MeterError::Exception { .. } => "exception",
            MeterError::NotSunSpec
            | MeterError::NoCommonModel
            | MeterError::NoPowerModel(_)
            | MeterError::NotImplemented(_)
            | MeterError::Parse(_) => "parse",
        }
    }
}
