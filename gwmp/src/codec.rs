//! Datagram ⇄ packet, on top of semtech-udp's packet types, plus builders for the frames
//! our hotspot role sends and receives.
//!
//! Byte layout (GWMP v2, helium/semtech-udp PROTOCOL.TXT): `[0]` version 2, `[1..3]`
//! random token, `[3]` identifier, then for gateway→server packets the 8-byte gateway EUI,
//! then (PUSH_DATA, PULL_RESP, optional for TX_ACK) a JSON object.

use semtech_udp::{
    CodingRate, DataRate, Down, MacAddress, Modulation, Packet, ParseError, SerializablePacket, Up,
    pull_resp, push_data,
};
use thiserror::Error;

/// Largest UDP payload over IPv4; no GWMP datagram can be longer.
pub const MAX_DATAGRAM: usize = 65_507;
/// GWMP version this codec speaks (semtech-udp refuses v1).
pub const PROTOCOL_VERSION: u8 = 2;

/// Why a datagram was not a valid GWMP packet. [`DecodeError::kind`] is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than its header.
    #[error("datagram of {len} bytes is shorter than the {need}-byte header")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// Not protocol version 2.
    #[error("GWMP version {0} (only 2 is spoken)")]
    Version(u8),
    /// Unknown packet identifier.
    #[error("unknown GWMP identifier {0:#04x}")]
    Identifier(u8),
    /// The JSON part has bytes outside ASCII. Real forwarders only send ASCII (base64
    /// payloads, numbers, ASCII keys); refusing the rest up front also keeps such bytes
    /// away from semtech-udp's data-rate parser, which slices strings by byte offset and
    /// would panic on a multi-byte character.
    #[error("JSON part is not ASCII")]
    NotAscii,
    /// The JSON part does not match the packet's schema.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A packet of the other direction (e.g. a PUSH_ACK sent to a server).
    #[error("{0} packet arrived in the wrong direction")]
    Direction(&'static str),
    /// semtech-udp's parser panicked on these bytes (caught; see [`decode`]). Every input
    /// known to do so is refused earlier, so a count here is a new upstream bug.
    #[error("the GWMP parser panicked on this datagram")]
    ParserPanic,
}

impl DecodeError {
    /// Every label [`DecodeError::kind`] returns, for pre-registering metric series.
    pub const KINDS: [&'static str; 7] = [
        "too_short",
        "version",
        "identifier",
        "not_ascii",
        "json",
        "direction",
        "parser_panic",
    ];

    /// Short label for the `malformed` counter.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::Version(_) => "version",
            DecodeError::Identifier(_) => "identifier",
            DecodeError::NotAscii => "not_ascii",
            DecodeError::Json(_) => "json",
            DecodeError::Direction(_) => "direction",
            DecodeError::ParserPanic => "parser_panic",
        }
    }
}

/// Why a packet could not be encoded (only an over-long JSON body can cause it).
#[derive(Debug, Error)]
#[error("encoding GWMP packet: {0}")]
pub struct EncodeError(String);

/// Where the JSON part of a datagram starts, by identifier: after the EUI for
/// gateway→server packets, right after the header for PULL_RESP, nowhere for the rest.
fn json_start(identifier: u8) -> Option<usize> {
    match identifier {
        0x00 | 0x05 => Some(12), // PUSH_DATA, TX_ACK
        0x03 => Some(4),         // PULL_RESP
        _ => None,
    }
}

/// The shortest PUSH_DATA that can be valid: header, EUI and at least `{}`'s first byte.
const PUSH_DATA_MIN: usize = 13;
/// GWMP identifier of PUSH_DATA.
const PUSH_DATA: u8 = 0x00;

/// Decodes any GWMP v2 datagram. Never panics, whatever the bytes.
///
/// Two lines of defence around semtech-udp 0.12's `Packet::parse`: inputs known to panic
/// it are refused first, and the call runs under `catch_unwind`, so an unknown panic
/// costs one datagram (counted `parser_panic`), not the receive loop.
///
/// Upstream report (helium/semtech-udp, 0.12.0, `src/packet/parser.rs`): the 12-byte
/// PUSH_DATA `02 00 00 00 00 00 00 00 00 00 00 00` (version 2, token 0, PUSH_DATA,
/// gateway EUI 00…00, no JSON) panics with "slice index starts at 8 but ends at 7":
/// `terminate()` strips a trailing NUL that is the EUI's last byte, not a JSON
/// terminator, and `&buffer[GATEWAY_MAC_LEN..terminate(buffer)]` becomes `buf[8..7]`. Any
/// EUI ending in 0x00 does it. Suggested fix: slice `buffer[GATEWAY_MAC_LEN..]` first and
/// strip the NUL from that (as the TX_ACK branch guards with its `len == 9` check).
pub fn decode(datagram: &[u8]) -> Result<Packet, DecodeError> {
    if let (Some(&identifier), true) =
        (datagram.get(3), datagram.first() == Some(&PROTOCOL_VERSION))
    {
        if identifier == PUSH_DATA && datagram.len() < PUSH_DATA_MIN {
            return Err(DecodeError::TooShort {
                len: datagram.len(),
                need: PUSH_DATA_MIN,
            });
        }
        if let Some(start) = json_start(identifier)
            && !datagram.get(start..).unwrap_or_default().is_ascii()
        {
            return Err(DecodeError::NotAscii);
        }
    }
    // `&[u8]` is unwind-safe, and the parser keeps no state across calls.
    let parsed = std::panic::catch_unwind(|| Packet::parse(datagram))
        .map_err(|_| DecodeError::ParserPanic)?;
    parsed.map_err(|e| match e {
        ParseError::InvalidPacketLength(len, need) => DecodeError::TooShort { len, need },
        ParseError::InvalidProtocolVersion(v) => DecodeError::Version(v),
        ParseError::InvalidIdentifier(id) => DecodeError::Identifier(id),
        ParseError::Utf8(_) => DecodeError::NotAscii,
        ParseError::InvalidJson { json_error, .. } => DecodeError::Json(json_error.to_string()),
        ParseError::UnexpectedDownlink(_) => DecodeError::Direction("downlink"),
        ParseError::UnexpectedUplink(_) => DecodeError::Direction("uplink"),
    })
}

/// Decodes a gateway→server datagram (what a network server receives).
pub fn decode_uplink(datagram: &[u8]) -> Result<Up, DecodeError> {
    match decode(datagram)? {
        Packet::Up(up) => Ok(up),
        Packet::Down(_) => Err(DecodeError::Direction("server-to-gateway")),
    }
}

/// Decodes a server→gateway datagram (what a packet forwarder receives).
pub fn decode_downlink(datagram: &[u8]) -> Result<Down, DecodeError> {
    match decode(datagram)? {
        Packet::Down(down) => Ok(down),
        Packet::Up(_) => Err(DecodeError::Direction("gateway-to-server")),
    }
}

/// Encodes any packet into a fresh datagram, its JSON part in ASCII.
pub fn encode(packet: &impl SerializablePacket) -> Result<Vec<u8>, EncodeError> {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let written = packet
        .serialize(&mut buffer)
        .map_err(|e| EncodeError(e.to_string()))?;
    buffer.truncate(usize::try_from(written).unwrap_or(MAX_DATAGRAM));
    let datagram = ascii_json(buffer);
    if datagram.len() > MAX_DATAGRAM {
        return Err(EncodeError(format!(
            "{} bytes once escaped, over the {MAX_DATAGRAM}-byte datagram limit",
            datagram.len()
        )));
    }
    Ok(datagram)
}

/// Escapes each non-ASCII character of the JSON part as `\uXXXX`. serde_json writes them
/// raw, and `decode` refuses raw ones ([`DecodeError::NotAscii`]), so without this a string
/// that arrived escaped (a stat `time` of `"\u00e9"`) re-encoded into a datagram we refuse
/// ourselves (found by fuzz target `gwmp_decode`). Outside strings JSON is ASCII, so only
/// string contents change, and they keep their meaning.
fn ascii_json(datagram: Vec<u8>) -> Vec<u8> {
    let start = datagram
        .get(3)
        .and_then(|&identifier| json_start(identifier));
    let Some(json) = start.and_then(|s| datagram.get(s..)) else {
        return datagram;
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return datagram;
    };
    if json.is_ascii() {
        return datagram;
    }
    let mut out = datagram[..datagram.len() - json.len()].to_vec();
    let mut units = [0u16; 2];
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            for unit in c.encode_utf16(&mut units) {
                out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
            }
        }
    }
    out
}

/// A gateway EUI from its 16 hex digits (as forwarders print it), or `None`.
pub fn parse_eui(text: &str) -> Option<MacAddress> {
    let bytes: [u8; 8] = (0..8)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?
        .try_into()
        .ok()?;
    (text.len() == 16).then(|| MacAddress::from(bytes))
}

/// Parses a LoRa data rate such as `SF9BW125`, or `None`. ASCII-checked first, for the
/// reason given on [`DecodeError::NotAscii`].
pub fn parse_datarate(text: &str) -> Option<DataRate> {
    if !text.is_ascii() {
        return None;
    }
    text.parse().ok()
}

/// Hz → the MHz float GWMP carries.
pub fn hz_to_mhz(hz: u64) -> f64 {
    hz as f64 / 1e6
}

/// GWMP's MHz float → Hz (the spec gives MHz at Hz precision, so rounding is exact).
pub fn mhz_to_hz(mhz: f64) -> u64 {
    (mhz * 1e6).round().max(0.0) as u64
}

/// What a packet forwarder reports for one received LoRa frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The PHY payload.
    pub data: Vec<u8>,
    /// Centre frequency, Hz.
    pub frequency_hz: u64,
    /// Data rate.
    pub datarate: DataRate,
    /// RSSI, dBm.
    pub rssi_dbm: i32,
    /// SNR, dB.
    pub snr_db: f32,
    /// Concentrator microsecond counter at reception.
    pub tmst: u32,
}

/// A v1-style rxpk (the layout the Semtech reference forwarder sends) for `frame`.
pub fn rxpk(frame: &Received) -> push_data::RxPk {
    push_data::RxPk::V1(push_data::RxPkV1 {
        chan: 0,
        codr: Some(CodingRate::_4_5),
        size: frame.data.len() as u64,
        data: frame.data.clone(),
        datr: frame.datarate,
        freq: hz_to_mhz(frame.frequency_hz),
        lsnr: frame.snr_db,
        modu: Modulation::LORA,
        rfch: 0,
        rssi: frame.rssi_dbm,
        rssis: Some(frame.rssi_dbm),
        stat: push_data::CRC::OK,
        tmst: frame.tmst,
        time: None,
    })
}

/// The reception an rxpk describes (signal RSSI when given, else channel RSSI).
pub fn received(rxpk: &push_data::RxPk) -> Received {
    Received {
        data: rxpk.data().clone(),
        frequency_hz: mhz_to_hz(rxpk.frequency()),
        datarate: rxpk.datarate(),
        rssi_dbm: rxpk.signal_rssi().unwrap_or_else(|| rxpk.channel_rssi()),
        snr_db: rxpk.snr(),
        tmst: rxpk.timestamp(),
    }
}

/// A txpk for an immediate LoRa transmission, as gateway-rs sends beacons
/// (`beacon_to_pull_resp`: `imme`, coding rate 4/5, RF chain 0, no IQ inversion).
pub fn immediate_txpk(
    data: Vec<u8>,
    frequency_hz: u64,
    datarate: DataRate,
    power_dbm: u64,
) -> pull_resp::TxPk {
    pull_resp::TxPk {
        time: pull_resp::Time::immediate(),
        freq: hz_to_mhz(frequency_hz),
        rfch: 0,
        powe: power_dbm,
        modu: Modulation::LORA,
        datr: datarate,
        codr: Some(CodingRate::_4_5),
        fdev: None,
        ipol: false,
        prea: None,
        data: pull_resp::PhyData::new(data),
        ncrc: None,
    }
}

/// A PUSH_DATA carrying `rxpk`s from gateway `mac`.
pub fn push_data(token: u16, mac: MacAddress, rxpk: Vec<push_data::RxPk>) -> push_data::Packet {
    push_data::Packet {
        random_token: token,
        gateway_mac: mac,
        data: push_data::Data {
            rxpk: Some(rxpk),
            stat: None,
        },
    }
}
