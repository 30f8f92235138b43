//! The network-server side of GWMP, which the hotspot agent serves to its packet forwarder:
//! PUSH_DATA → PUSH_ACK (+ rxpk/stat events), PULL_DATA → PULL_ACK (and remember where the
//! gateway listens), PULL_RESP out, TX_ACK matched back to it by token. Malformed
//! datagrams are counted by kind and dropped; nothing a peer sends can stop the loop.
//!
//! The protocol has no authentication (PROTOCOL.TXT says so), so bind it to loopback or
//! the pod network only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use semtech_udp::{MacAddress, Up, pull_ack, pull_resp, push_ack, push_data, tx_ack};
use thiserror::Error;
use tokio::net::{ToSocketAddrs, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::codec::{DecodeError, MAX_DATAGRAM, decode_uplink, encode};

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
    pub malformed: [(&'static str, u64); 6],
}

impl Counters {
    /// Total malformed datagrams.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().map(|(_, n)| n).sum()
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
    malformed: [AtomicU64; 6],
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
    next_token: AtomicU16,
    downlink_timeout: Duration,
}

impl Inner {
    fn gateways(&self) -> std::sync::MutexGuard<'_, HashMap<MacAddress, SocketAddr>> {
        // Only plain maps live behind these locks; a panic cannot leave them half-updated.
        self.gateways.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Endpoint settings.
#[derive(Debug, Clone, Copy)]
pub struct EndpointConfig {
    /// How long [`Endpoint::send_downlink`] waits for the TX_ACK.
    pub downlink_timeout: Duration,
    /// Capacity of the event channel.
    pub event_capacity: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            downlink_timeout: DEFAULT_DOWNLINK_TIMEOUT,
            event_capacity: DEFAULT_EVENT_CAPACITY,
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
            next_token: AtomicU16::new(rand_token()),
            downlink_timeout: config.downlink_timeout,
        });
        let task = tokio::spawn(receive_loop(Arc::clone(&inner), events));
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
        }
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
        // At most 65 536 downlinks can be pending; a hotspot has a handful, so the loop
        // finds a free token within a step or two.
        let mut token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        while pending.contains_key(&token) {
            token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        }
        pending.insert(token, sender);
        (token, receiver)
    }
}

/// A starting token that differs between runs, so a restarted agent does not match a
/// stale TX_ACK meant for its predecessor.
fn rand_token() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (nanos ^ (nanos >> 16)) as u16
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
        match decode_uplink(&buffer[..len]) {
            Ok(packet) => handle(&inner, &events, packet, from).await,
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
