//! The network-server side of GWMP, which the hotspot agent serves to its packet forwarder:
//! PUSH_DATA → PUSH_ACK (+ rxpk/stat events), PULL_DATA → PULL_ACK (and remember where the
//! gateway listens), PULL_RESP out, TX_ACK matched back to it by token. Malformed
//! datagrams are counted by kind and dropped; nothing a peer sends can stop the loop.
//!
//! The protocol has no authentication (PROTOCOL.TXT says so): anyone who can reach the
//! port can hand the hotspot frames it never heard, and the hotspot would sign them as
//! witnesses. So the endpoint serves one configured forwarder ([`Admission`]): datagrams
//! from any other source address or gateway EUI are dropped unanswered and counted by
//! reason. Downlink tokens are random, so a TX_ACK cannot be forged blind by counting.
//!
//! The receive loop runs under a supervisor: should it panic, it is restarted and the
//! restart counted, and [`Endpoint::receiving`] turns false while restarts come faster
//! than [`RESTART_LIMIT`] per [`RESTART_WINDOW`], so a readiness probe can report it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use semtech_udp::{MacAddress, Up, pull_ack, pull_resp, push_ack, push_data, tx_ack};
use thiserror::Error;
use tokio::net::{ToSocketAddrs, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::codec::{DecodeError, MAX_DATAGRAM, decode_uplink, encode};

/// Receive-loop restarts within [`RESTART_WINDOW`] at which the endpoint reports itself
/// not receiving. One restart is a fluke worth a counter; five a minute is a poison
/// datagram on repeat, and the pod should go unready so someone looks.
pub const RESTART_LIMIT: usize = 5;
/// The window [`RESTART_LIMIT`] counts restarts in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Pause before restarting a panicked receive loop, so a flood of poison datagrams costs
/// at most this per datagram rather than a spinning core.
const RESTART_DELAY: Duration = Duration::from_millis(20);

/// Which packet forwarder an endpoint serves. Everything else is dropped before it is
/// decoded (source) or acted on (EUI), without an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Admission {
    /// No forwarder is configured: every datagram is dropped (`no_forwarder`).
    #[default]
    Closed,
    /// Every datagram, whoever sends it (tests and benches only: GWMP authenticates
    /// nothing, so this lets any peer inject frames).
    Any,
    /// Only datagrams from an address inside `sources` carrying gateway EUI `gateway`.
    Pinned {
        /// The forwarder's gateway EUI.
        gateway: MacAddress,
        /// Networks the forwarder sends from (a /32 or /128 for one host).
        sources: Vec<IpNet>,
    },
}

/// Why a datagram was not admitted; [`Refusal::as_str`] is the metric `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The endpoint has no forwarder configured ([`Admission::Closed`]).
    NoForwarder,
    /// The source address is outside the forwarder's networks.
    Source,
    /// The gateway EUI is not the forwarder's.
    GatewayEui,
}

impl Refusal {
    /// Every refusal, in the order of [`Counters::refused`].
    pub const ALL: [Refusal; 3] = [Refusal::NoForwarder, Refusal::Source, Refusal::GatewayEui];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::NoForwarder => "no_forwarder",
            Refusal::Source => "source",
            Refusal::GatewayEui => "gateway_eui",
        }
    }

    const fn index(self) -> usize {
        match self {
            Refusal::NoForwarder => 0,
            Refusal::Source => 1,
            Refusal::GatewayEui => 2,
        }
    }
}

impl Admission {
    /// Whether a datagram from `from` may be decoded at all.
    pub fn admits_source(&self, from: &SocketAddr) -> Result<(), Refusal> {
        match self {
            Admission::Closed => Err(Refusal::NoForwarder),
            Admission::Any => Ok(()),
            Admission::Pinned { sources, .. } => {
                // An IPv4 forwarder reaching a dual-stack socket shows up as ::ffff:a.b.c.d.
                let ip = from.ip().to_canonical();
                if sources.iter().any(|net| net.contains(&ip)) {
                    Ok(())
                } else {
                    Err(Refusal::Source)
                }
            }
        }
    }

    /// Whether a decoded uplink's gateway EUI is the forwarder's.
    pub fn admits_gateway(&self, gateway: MacAddress) -> Result<(), Refusal> {
        match self {
            Admission::Closed => Err(Refusal::NoForwarder),
            Admission::Any => Ok(()),
            Admission::Pinned {
                gateway: pinned, ..
            } if *pinned == gateway => Ok(()),
            Admission::Pinned { .. } => Err(Refusal::GatewayEui),
        }
    }
}

/// Receive-loop restarts in a sliding window: a pure record the supervisor feeds with
/// `now`, so the health rule is tested without waiting.
#[derive(Debug, Default)]
pub struct Restarts {
    recent: VecDeque<Instant>,
}

impl Restarts {
    /// Records a restart at `now`.
    pub fn record(&mut self, now: Instant) {
        self.forget(now);
        self.recent.push_back(now);
    }

    /// Whether restarts inside the window before `now` stay under [`RESTART_LIMIT`].
    pub fn healthy(&mut self, now: Instant) -> bool {
        self.forget(now);
        self.recent.len() < RESTART_LIMIT
    }

    fn forget(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > RESTART_WINDOW)
        {
            self.recent.pop_front();
        }
    }
}

/// How long a downlink waits for its TX_ACK. gateway-rs `DOWNLINK_TIMEOUT`: 5 s.
pub const DEFAULT_DOWNLINK_TIMEOUT: Duration = Duration::from_secs(5);
/// Events buffered for a slow consumer before new ones are dropped (and counted): the
/// receive loop must keep acknowledging, or the forwarder's `ackr` statistic collapses.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// What the endpoint tells its user.
#[derive(Debug, Clone)]
pub enum Event {
    /// A received frame from a PUSH_DATA.
    Rxpk {
        /// The forwarder's gateway EUI.
        gateway: MacAddress,
        /// The frame and its radio metadata.
        rxpk: push_data::RxPk,
    },
    /// A forwarder status report from a PUSH_DATA.
    Stat {
        /// The forwarder's gateway EUI.
        gateway: MacAddress,
        /// The statistics.
        stat: push_data::Stat,
    },
    /// A gateway's PULL_DATA came from a new address: downlinks now go there.
    GatewayConnected {
        /// The forwarder's gateway EUI.
        gateway: MacAddress,
        /// Where its PULL_DATA came from.
        address: SocketAddr,
    },
}

/// Counters since the endpoint started (a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// PUSH_DATA packets received (each acknowledged).
    pub push_data: u64,
    /// PULL_DATA packets received (each acknowledged).
    pub pull_data: u64,
    /// TX_ACK packets received.
    pub tx_ack: u64,
    /// TX_ACKs whose token matched no pending downlink (late, or not ours).
    pub tx_ack_unmatched: u64,
    /// TX_ACKs that reported an error.
    pub tx_ack_errors: u64,
    /// rxpk frames received.
    pub rxpk: u64,
    /// stat reports received.
    pub stat: u64,
    /// PULL_RESP downlinks sent.
    pub pull_resp: u64,
    /// Events dropped because the consumer was behind.
    pub events_dropped: u64,
    /// Datagrams that could not be sent (acks, downlinks).
    pub send_errors: u64,
    /// Malformed datagrams by [`DecodeError::kind`], in [`DecodeError::KINDS`] order.
    pub malformed: [(&'static str, u64); MALFORMED_KINDS],
    /// Datagrams not admitted, by [`Refusal::as_str`], in [`Refusal::ALL`] order.
    pub refused: [(&'static str, u64); 3],
    /// Times the receive loop panicked and was restarted.
    pub receive_restarts: u64,
}

/// How many malformed kinds are counted.
const MALFORMED_KINDS: usize = DecodeError::KINDS.len();

impl Counters {
    /// Total malformed datagrams.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().map(|(_, n)| n).sum()
    }

    /// Total datagrams not admitted.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Default)]
struct Atomics {
    push_data: AtomicU64,
    pull_data: AtomicU64,
    tx_ack: AtomicU64,
    tx_ack_unmatched: AtomicU64,
    tx_ack_errors: AtomicU64,
    rxpk: AtomicU64,
    stat: AtomicU64,
    pull_resp: AtomicU64,
    events_dropped: AtomicU64,
    send_errors: AtomicU64,
    malformed: [AtomicU64; MALFORMED_KINDS],
    refused: [AtomicU64; 3],
    receive_restarts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

type Pending = HashMap<u16, oneshot::Sender<Result<Option<u32>, tx_ack::Error>>>;

struct Inner {
    socket: UdpSocket,
    counters: Atomics,
    gateways: Mutex<HashMap<MacAddress, SocketAddr>>,
    pending: Mutex<Pending>,
    downlink_timeout: Duration,
    admission: Admission,
    restarts: Mutex<Restarts>,
}

impl Inner {
    fn restarts(&self) -> std::sync::MutexGuard<'_, Restarts> {
        self.restarts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, refusal: Refusal, from: SocketAddr) {
        bump(&self.counters.refused[refusal.index()]);
        tracing::debug!(%from, reason = refusal.as_str(), "GWMP datagram not from the configured forwarder dropped");
    }

    fn gateways(&self) -> std::sync::MutexGuard<'_, HashMap<MacAddress, SocketAddr>> {
        // Only plain maps live behind these locks; a panic cannot leave them half-updated.
        self.gateways.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// How long [`Endpoint::send_downlink`] waits for the TX_ACK.
    pub downlink_timeout: Duration,
    /// Capacity of the event channel.
    pub event_capacity: usize,
    /// Which forwarder is served (default: none, so nothing is admitted by accident).
    pub admission: Admission,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            downlink_timeout: DEFAULT_DOWNLINK_TIMEOUT,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            admission: Admission::default(),
        }
    }
}

/// What the forwarder answered to a downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxAccepted {
    /// The counter value the forwarder scheduled it at, when it says.
    pub tmst: Option<u32>,
    /// The power actually used, when the forwarder lowered it (TX_ACK `warn: TX_POWER`).
    pub adjusted_power_dbm: Option<i32>,
}

/// Why a downlink was not transmitted.
#[derive(Debug, Error)]
pub enum DownlinkError {
    /// No forwarder has sent PULL_DATA yet, so there is nowhere to send.
    #[error("no packet forwarder has connected (no PULL_DATA yet)")]
    NoGateway,
    /// The named gateway has not sent PULL_DATA.
    #[error("gateway {0} has not connected")]
    UnknownGateway(MacAddress),
    /// The packet could not be encoded.
    #[error(transparent)]
    Encode(#[from] crate::codec::EncodeError),
    /// The datagram could not be sent.
    #[error("sending PULL_RESP: {0}")]
    Send(#[source] std::io::Error),
    /// No TX_ACK arrived in time.
    #[error("no TX_ACK within {0:?}")]
    Timeout(Duration),
    /// The forwarder refused the transmission (TX_ACK error: TOO_LATE, TX_FREQ, …).
    #[error("forwarder refused the downlink: {0}")]
    Rejected(tx_ack::Error),
}

/// A running GWMP server endpoint. Cloning shares it; the receive loop stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds the UDP socket and starts the receive loop; events arrive on the receiver.
    pub async fn bind(
        address: impl ToSocketAddrs,
        config: EndpointConfig,
    ) -> std::io::Result<(Self, mpsc::Receiver<Event>)> {
        let socket = UdpSocket::bind(address).await?;
        let (events, receiver) = mpsc::channel(config.event_capacity.max(1));
        let inner = Arc::new(Inner {
            socket,
            counters: Atomics::default(),
            gateways: Mutex::default(),
            pending: Mutex::default(),
            downlink_timeout: config.downlink_timeout,
            admission: config.admission,
            restarts: Mutex::default(),
        });
        let task = tokio::spawn(supervise(Arc::clone(&inner), events));
        Ok((
            Self {
                inner,
                _task: Arc::new(AbortOnDrop(task)),
            },
            receiver,
        ))
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.socket.local_addr()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut malformed = DecodeError::KINDS.map(|kind| (kind, 0));
        for (slot, counter) in malformed.iter_mut().zip(&c.malformed) {
            slot.1 = load(counter);
        }
        Counters {
            push_data: load(&c.push_data),
            pull_data: load(&c.pull_data),
            tx_ack: load(&c.tx_ack),
            tx_ack_unmatched: load(&c.tx_ack_unmatched),
            tx_ack_errors: load(&c.tx_ack_errors),
            rxpk: load(&c.rxpk),
            stat: load(&c.stat),
            pull_resp: load(&c.pull_resp),
            events_dropped: load(&c.events_dropped),
            send_errors: load(&c.send_errors),
            malformed,
            refused: Refusal::ALL.map(|r| (r.as_str(), load(&c.refused[r.index()]))),
            receive_restarts: load(&c.receive_restarts),
        }
    }

    /// Whether the receive loop is working: false while it has panicked and been restarted
    /// [`RESTART_LIMIT`] times within [`RESTART_WINDOW`] (a readiness check).
    pub fn receiving(&self) -> bool {
        self.inner.restarts().healthy(Instant::now())
    }

    /// Gateways that have sent PULL_DATA, with the address downlinks go to.
    pub fn gateways(&self) -> Vec<(MacAddress, SocketAddr)> {
        self.inner
            .gateways()
            .iter()
            .map(|(m, a)| (*m, *a))
            .collect()
    }

    /// Sends `txpk` as a PULL_RESP to `gateway` (or, with `None`, to the one connected
    /// forwarder; a hotspot has exactly one) and waits for its TX_ACK.
    pub async fn send_downlink(
        &self,
        gateway: Option<MacAddress>,
        txpk: pull_resp::TxPk,
    ) -> Result<TxAccepted, DownlinkError> {
        let address = {
            let gateways = self.inner.gateways();
            match gateway {
                Some(mac) => *gateways
                    .get(&mac)
                    .ok_or(DownlinkError::UnknownGateway(mac))?,
                None => *gateways.values().next().ok_or(DownlinkError::NoGateway)?,
            }
        };
        let (token, answer) = self.register_pending();
        let packet = pull_resp::Packet {
            random_token: token,
            data: pull_resp::Data::from_txpk(txpk),
        };
        let sent = match encode(&packet) {
            Ok(datagram) => self
                .inner
                .socket
                .send_to(&datagram, address)
                .await
                .map_err(DownlinkError::Send),
            Err(e) => Err(DownlinkError::Encode(e)),
        };
        if let Err(e) = sent {
            self.inner.pending().remove(&token);
            bump(&self.inner.counters.send_errors);
            return Err(e);
        }
        bump(&self.inner.counters.pull_resp);
        let timeout = self.inner.downlink_timeout;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(tmst))) => Ok(TxAccepted {
                tmst,
                adjusted_power_dbm: None,
            }),
            Ok(Ok(Err(tx_ack::Error::AdjustedTransmitPower(power, tmst)))) => Ok(TxAccepted {
                tmst,
                adjusted_power_dbm: power,
            }),
            Ok(Ok(Err(refused))) => Err(DownlinkError::Rejected(refused)),
            // The sender is only dropped by the timeout path below, never before we wait.
            Ok(Err(_)) | Err(_) => {
                self.inner.pending().remove(&token);
                Err(DownlinkError::Timeout(timeout))
            }
        }
    }

    /// A token no pending downlink uses, and the channel its TX_ACK will arrive on.
    fn register_pending(&self) -> (u16, oneshot::Receiver<Result<Option<u32>, tx_ack::Error>>) {
        let (sender, receiver) = oneshot::channel();
        let mut pending = self.inner.pending();
        // Random, not sequential: whoever can send from the forwarder's address but cannot
        // see its traffic must guess (1 in 65 536 per forged TX_ACK) instead of counting,
        // and a restarted agent does not match a stale TX_ACK meant for its predecessor.
        // A hotspot has a handful pending, so a free token is found within a draw or two.
        let mut token: u16 = rand::random();
        while pending.contains_key(&token) {
            token = rand::random();
        }
        pending.insert(token, sender);
        (token, receiver)
    }
}

/// Runs the receive loop, restarting it whenever it panics (counted, and fed to the
/// health rule). Dropping this future (the endpoint's last clone going) aborts the loop.
async fn supervise(inner: Arc<Inner>, events: mpsc::Sender<Event>) {
    let counted = Arc::clone(&inner);
    restart_on_panic(
        || receive_loop(Arc::clone(&inner), events.clone()),
        || {
            bump(&counted.counters.receive_restarts);
            counted.restarts().record(Instant::now());
            tracing::error!("GWMP receive loop panicked; restarting it");
        },
    )
    .await;
}

/// Spawns `task()` and spawns it again each time it panics, calling `on_panic` first;
/// returns when a run ends without panicking. The running task is aborted when this
/// future is dropped.
async fn restart_on_panic<T, F>(mut task: T, mut on_panic: impl FnMut())
where
    T: FnMut() -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let mut running = AbortOnDrop(tokio::spawn(task()));
        match (&mut running.0).await {
            Err(e) if e.is_panic() => {
                on_panic();
                tokio::time::sleep(RESTART_DELAY).await;
            }
            // Cancelled from outside, or finished: nothing left to supervise.
            _ => return,
        }
    }
}

async fn receive_loop(inner: Arc<Inner>, events: mpsc::Sender<Event>) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match inner.socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) => {
                // ICMP port-unreachable from an earlier send surfaces here on some
                // platforms; it says nothing about the socket, so keep receiving.
                tracing::debug!(error = %e, "GWMP receive error");
                continue;
            }
        };
        if let Err(refusal) = inner.admission.admits_source(&from) {
            inner.refuse(refusal, from);
            continue;
        }
        match decode_uplink(&buffer[..len]) {
            Ok(packet) => {
                let gateway = match &packet {
                    Up::PushData(p) => p.gateway_mac,
                    Up::PullData(p) => p.gateway_mac,
                    Up::TxAck(p) => p.gateway_mac,
                };
                match inner.admission.admits_gateway(gateway) {
                    Ok(()) => handle(&inner, &events, packet, from).await,
                    Err(refusal) => inner.refuse(refusal, from),
                }
            }
            Err(e) => {
                let index = DecodeError::KINDS
                    .iter()
                    .position(|k| *k == e.kind())
                    .unwrap_or(0);
                bump(&inner.counters.malformed[index]);
                tracing::debug!(%from, error = %e, "dropped malformed GWMP datagram");
            }
        }
    }
}

async fn reply(
    inner: &Inner,
    datagram: Result<Vec<u8>, crate::codec::EncodeError>,
    to: SocketAddr,
) {
    let sent = match datagram {
        Ok(bytes) => inner.socket.send_to(&bytes, to).await.is_ok(),
        Err(_) => false,
    };
    if !sent {
        bump(&inner.counters.send_errors);
    }
}

fn emit(inner: &Inner, events: &mpsc::Sender<Event>, event: Event) {
    if events.try_send(event).is_err() {
        bump(&inner.counters.events_dropped);
    }
}

async fn handle(inner: &Inner, events: &mpsc::Sender<Event>, packet: Up, from: SocketAddr) {
    match packet {
        Up::PushData(push) => {
            bump(&inner.counters.push_data);
            // Acknowledge first: the forwarder measures the server by its ack latency.
            let ack = push_ack::Packet {
                random_token: push.random_token,
            };
            reply(inner, encode(&ack), from).await;
            let gateway = push.gateway_mac;
            for rxpk in push.data.rxpk.into_iter().flatten() {
                bump(&inner.counters.rxpk);
                emit(inner, events, Event::Rxpk { gateway, rxpk });
            }
            if let Some(stat) = push.data.stat {
                bump(&inner.counters.stat);
                emit(inner, events, Event::Stat { gateway, stat });
            }
        }
        Up::PullData(pull) => {
            bump(&inner.counters.pull_data);
            let ack = pull_ack::Packet {
                random_token: pull.random_token,
            };
            reply(inner, encode(&ack), from).await;
            let previous = inner.gateways().insert(pull.gateway_mac, from);
            if previous != Some(from) {
                let gateway = pull.gateway_mac;
                emit(
                    inner,
                    events,
                    Event::GatewayConnected {
                        gateway,
                        address: from,
                    },
                );
            }
        }
        Up::TxAck(ack) => {
            bump(&inner.counters.tx_ack);
            let result = ack.get_result();
            if matches!(result, Err(ref e) if !matches!(e, tx_ack::Error::AdjustedTransmitPower(..)))
            {
                bump(&inner.counters.tx_ack_errors);
            }
            match inner.pending().remove(&ack.random_token) {
                // The waiter may have timed out just now; then the ack is simply late.
                Some(waiter) => {
                    let _ = waiter.send(result);
                }
                None => bump(&inner.counters.tx_ack_unmatched),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_turn_unhealthy_at_the_limit_and_recover_after_the_window() {
        let start = Instant::now();
        let mut restarts = Restarts::default();
        let at = |s: u64| start + Duration::from_secs(s);
        for i in 0..RESTART_LIMIT - 1 {
            restarts.record(at(i as u64));
            assert!(restarts.healthy(at(i as u64)), "{} restarts", i + 1);
        }
        restarts.record(at(10));
        assert!(!restarts.healthy(at(10)), "{RESTART_LIMIT} within a minute");
        // The first restart leaves the window 60 s after it happened.
        assert!(!restarts.healthy(at(RESTART_WINDOW.as_secs())));
        assert!(restarts.healthy(at(RESTART_WINDOW.as_secs() + 1)));
    }

    #[test]
    fn admission_rules() {
        let mac = MacAddress::from([1, 2, 3, 4, 5, 6, 7, 8]);
        let other = MacAddress::from([1, 2, 3, 4, 5, 6, 7, 9]);
        let pinned = Admission::Pinned {
            gateway: mac,
            sources: vec!["10.244.0.0/16".parse().expect("cidr")],
        };
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(pinned.admits_source(&addr("10.244.3.7:1700")), Ok(()));
        assert_eq!(
            pinned.admits_source(&addr("[::ffff:10.244.3.7]:1700")),
            Ok(()),
            "IPv4-mapped on a dual-stack socket"
        );
        assert_eq!(
            pinned.admits_source(&addr("10.245.0.1:1700")),
            Err(Refusal::Source)
        );
        assert_eq!(pinned.admits_gateway(mac), Ok(()));
        assert_eq!(pinned.admits_gateway(other), Err(Refusal::GatewayEui));
        let closed = Admission::default();
        assert_eq!(
            closed.admits_source(&addr("127.0.0.1:1")),
            Err(Refusal::NoForwarder)
        );
        assert_eq!(Admission::Any.admits_gateway(other), Ok(()));
    }

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_counted() {
        let runs = Arc::new(AtomicU64::new(0));
        let mut panics = 0;
        let started = Arc::clone(&runs);
        restart_on_panic(
            move || {
                let run = started.fetch_add(1, Ordering::Relaxed);
                async move {
                    assert!(run >= 2, "run {run} panics");
                }
            },
            || panics += 1,
        )
        .await;
        assert_eq!((runs.load(Ordering::Relaxed), panics), (3, 2));
    }
}
