//! A simulated SunSpec PV inverter: a Modbus TCP server whose registers replay a seeded
//! clear-sky curve for a given capacity and location (W from solar elevation, the
//! cumulative Wh register integrating it). It plays the device, nothing else.

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response};

use crate::solar::pv_watts;

/// Address of the "SunS" marker (the SunSpec convention).
pub const BASE_ADDRESS: u16 = 40000;
/// Integration step in simulated seconds: short enough that a trapezoid follows the curve
/// to well under the verifier's 10 % energy tolerance, long enough to stay cheap at 3600×.
const STEP_S: f64 = 10.0;
/// Inverter model served (three-phase inverter, integer + scale factors).
const INVERTER_MODEL: u16 = 103;

/// What the simulated meter is.
#[derive(Debug, Clone, PartialEq)]
pub struct PvMeterConfig {
    /// Nameplate capacity, W.
    pub capacity_w: f64,
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Serial number served in the common model.
    pub serial: String,
    /// Seed of the output ripple.
    pub seed: u64,
    /// Simulated seconds per real second (1 = real time).
    pub speed: f64,
    /// Simulated unix time at start, seconds (default: now).
    pub start_unix_s: Option<f64>,
    /// Energy register at start, Wh.
    pub initial_wh: u64,
}

#[derive(Debug)]
struct PvState {
    config: PvMeterConfig,
    started: Instant,
    start_s: f64,
    sim_s: f64,
    wh: f64,
    watts: f64,
}

impl PvState {
    /// Integrates output up to the simulated time now.
    fn advance(&mut self) {
        let target = self.start_s + self.started.elapsed().as_secs_f64() * self.config.speed;
        let c = &self.config;
        let power = |t: f64| pv_watts(c.capacity_w, t, c.latitude, c.longitude, c.seed);
        while self.sim_s < target {
            let next = (self.sim_s + STEP_S).min(target);
            self.wh += (power(self.sim_s) + power(next)) / 2.0 * (next - self.sim_s) / 3_600.0;
            self.sim_s = next;
        }
        self.watts = power(self.sim_s);
    }
}

/// A shared handle on the simulated device.
#[derive(Debug, Clone)]
pub struct PvMeter {
    state: Arc<Mutex<PvState>>,
}

impl PvMeter {
    /// A meter starting now (or at `config.start_unix_s`).
    pub fn new(config: PvMeterConfig) -> Self {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let start_s = config.start_unix_s.unwrap_or(now_s);
        let wh = config.initial_wh as f64;
        Self {
            state: Arc::new(Mutex::new(PvState {
                config,
                started: Instant::now(),
                start_s,
                sim_s: start_s,
                wh,
                watts: 0.0,
            })),
        }
    }

    /// Current (simulated unix seconds, W, Wh register).
    pub fn snapshot(&self) -> (f64, f64, u64) {
        let mut state = self.lock();
        state.advance();
        (state.sim_s, state.watts, state.wh.floor() as u64)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PvState> {
        // A panic while holding the lock cannot leave the plain numbers inconsistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The register image from [`BASE_ADDRESS`]: SunS, model 1, model 103, end marker.
    pub fn registers(&self) -> Vec<u16> {
        let mut state = self.lock();
        state.advance();
        image(
            &state.config.serial,
            state.watts,
            state.wh,
            state.config.capacity_w,
        )
    }

    /// Serves Modbus TCP on `listener` until the task is dropped; any unit id is answered.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let server = Server::new(listener);
        let on_connected = |stream, peer: SocketAddr| {
            let meter = self.clone();
            async move {
                accept_tcp_connection(stream, peer, move |_| {
                    Ok(Some(RegisterService {
                        meter: meter.clone(),
                    }))
                })
            }
        };
        server
            .serve(&on_connected, |err| {
                tracing::debug!(%err, "Modbus connection ended");
            })
            .await
    }
}

struct RegisterService {
    meter: PvMeter,
}

impl Service for RegisterService {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        ready(match request {
            Request::ReadHoldingRegisters(address, count) => {
                let regs = self.meter.registers();
                let start = usize::from(address.wrapping_sub(BASE_ADDRESS));
                let end = start + usize::from(count);
                if address < BASE_ADDRESS || end > regs.len() || count == 0 {
                    Err(ExceptionCode::IllegalDataAddress)
                } else {
                    Ok(Response::ReadHoldingRegisters(regs[start..end].to_vec()))
                }
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

fn string_regs(text: &str, len: usize) -> Vec<u16> {
    let mut bytes: Vec<u8> = text.bytes().take(len * 2).collect();
    bytes.resize(len * 2, 0);
    bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// The smallest power-of-ten scale factor that fits `max` into an int16.
fn scale_for(max: f64) -> i16 {
    let mut sf = 0i16;
    while max / 10f64.powi(i32::from(sf)) > f64::from(i16::MAX) && sf < 10 {
        sf += 1;
    }
    sf
}

fn image(serial: &str, watts: f64, wh: f64, capacity_w: f64) -> Vec<u16> {
    let mut regs = vec![0x5375, 0x6e53];
    // Common model 1: ID, L=66, Mn[16], Md[16], Opt[8], Vr[8], SN[16], DA, Pad.
    regs.extend([1, 66]);
    regs.extend(string_regs("DePIN-Sim", 16));
    regs.extend(string_regs("PV-clear-sky", 16));
    regs.extend(string_regs("", 8));
    regs.extend(string_regs(env!("CARGO_PKG_VERSION"), 8));
    regs.extend(string_regs(serial, 16));
    regs.extend([1, 0x8000]);
    // Inverter model 103: 50 registers after ID and L; unset points stay 0.
    let mut inverter = vec![0u16; 52];
    inverter[0] = INVERTER_MODEL;
    inverter[1] = 50;
    let w_sf = scale_for(capacity_w * 1.1);
    let amps = watts / 3.0 / 230.0;
    inverter[2] = (amps * 3.0 * 100.0).round() as u16; // A, A_SF = -2
    inverter[6] = (-2i16) as u16;
    inverter[10] = 2300; // PhVphA 230.0 V, V_SF = -1
    inverter[13] = (-1i16) as u16;
    inverter[14] = (watts / 10f64.powi(i32::from(w_sf))).round() as i16 as u16;
    inverter[15] = w_sf as u16;
    inverter[16] = 5000; // Hz 50.00, Hz_SF = -2
    inverter[17] = (-2i16) as u16;
    // WH acc32 (wraps at 2^32 Wh, as an accumulator does), WH_SF = 0.
    let register = (wh.floor() as u64 % (1u64 << 32)) as u32;
    inverter[24] = (register >> 16) as u16;
    inverter[25] = register as u16;
    inverter[38] = if watts > 0.0 { 4 } else { 2 }; // St: MPPT or sleeping
    regs.extend(inverter);
    regs.extend([0xffff, 0]);
    regs
}
