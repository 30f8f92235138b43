//! The Semtech UDP packet-forwarder protocol (GWMP v2) for the hotspot role: a codec on
//! top of Helium's `semtech-udp` packet types (re-exported as [`semtech_udp`]) that never
//! panics on hostile bytes, and the network-server [`Endpoint`] a packet forwarder talks to.
//!
//! The agent's hotspot role binds an [`Endpoint`] on the configured port, turns
//! [`Event::Rxpk`] into witness reports, and sends beacons with
//! [`Endpoint::send_downlink`] + [`codec::immediate_txpk`].

#![warn(missing_docs)]

pub mod codec;
mod endpoint;

pub use endpoint::{
    Admission, Counters, DEFAULT_DOWNLINK_TIMEOUT, DEFAULT_EVENT_CAPACITY, DownlinkError, Endpoint,
    EndpointConfig, Event, RESTART_LIMIT, RESTART_WINDOW, Refusal, Restarts, TxAccepted,
};
pub use ipnet::IpNet;
pub use semtech_udp;
