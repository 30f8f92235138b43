#!/usr/bin/env python3
"""Writes the seed corpora: a few valid inputs per target, so a short run starts past the
framing. Deterministic; run from anywhere: python3 fuzz/seeds.py (e2e/fuzz.sh does)."""
import json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
# The ed25519 base point, compressed: a valid public key.
KEY = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")
H32, SIG = bytes(range(32)), bytes(64)


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def field(tag, value):
    """Protobuf field: int -> varint, bytes/str -> length-delimited."""
    if isinstance(value, bool) or isinstance(value, int):
        return varint(tag << 3) + varint(int(value))
    if isinstance(value, str):
        value = value.encode()
    return varint(tag << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(field(t, v) for t, v in fields)


def entropy(tick=7):
    return msg((1, tick), (2, H32))


AGENT = {
    "hello": msg((1, msg((1, KEY), (2, KEY), (3, H32), (4, SIG), (5, "storage"), (6, "0.1.0")))),
    "commitments": msg((2, msg((1, msg((1, 5), (2, 4096), (3, 64), (4, 64), (5, H32), (6, SIG)))))),
    "storage_response": msg((3, msg((1, H32), (2, KEY), (3, 5), (4, 10), (5, 2), (6, 9),
                                    (7, msg((1, b"\x01" * 64), (2, H32 * 3))),
                                    (7, msg((1, b"\x02" * 5), (2, b""))), (8, SIG)))),
    "gpu_commitment": msg((4, msg((1, H32), (2, KEY), (3, 16), (4, H32), (5, SIG)))),
    "chain_commitment": msg((4, msg((1, H32), (2, KEY), (3, 16), (5, SIG), (6, H32), (6, H32)))),
    "gpu_opening": msg((5, msg((1, H32), (2, KEY),
                               (3, msg((1, 3), (2, b"".join(varint(zigzag(v)) for v in [1, -2, 3])), (3, H32 * 4))),
                               (4, SIG)))),
    "chain_opening": msg((5, msg((1, H32), (2, KEY), (4, SIG),
                                 (5, msg((1, 1), (2, msg((1, 2), (2, b"\x01\xff"), (3, H32))),
                                         (3, msg((1, 0), (2, b"\x05"), (3, H32 * 2)))))))),
    "meter_reading": msg((6, msg((1, "SN-42"), (2, 3), (3, 1200), (4, 5000), (5, 300), (6, 12), (7, H32), (8, SIG)))),
    "beacon_report": msg((7, msg((1, entropy()), (2, 7), (3, b"\x07" * 51), (4, 868100000), (5, "SF9BW125"),
                                 (6, zigzag(160)), (7, 99), (8, SIG)))),
    "witness_report": msg((8, msg((1, b"\x07" * 51), (2, 100), (3, 5), (4, zigzag(-1105)), (5, zigzag(-75)),
                                  (6, 868100000), (7, "SF9BW125"), (8, SIG)))),
}

receipt = msg((1, H32), (2, "storage"), (3, False), (4, "BadMerklePath"), (5, True),
              (6, msg((1, 1), (2, 2), (3, 3), (4, "18446744073709551622"))), (7, 42), (8, SIG))
VERIFIER = {
    "server_hello": msg((1, msg((1, H32), (2, KEY), (3, 64), (4, 1700000000000)))),
    "welcome": msg((2, msg((1, "StorageNode"), (2, "fleet"), (3, "sn-1")))),
    "commitment_receipts": msg((3, msg((1, msg((1, 5), (2, False), (3, "WrongLeafSize")))))),
    "storage_challenge": msg((4, msg((1, H32), (2, 5), (3, 10), (4, 2), (5, 1000), (6, 2000), (7, entropy()), (8, 46)))),
    "gpu_challenge": msg((5, msg((1, H32), (2, entropy()), (3, H32), (4, 64), (5, 1000), (6, 2000)))),
    "chain_challenge": msg((5, msg((1, H32), (2, entropy()), (3, H32), (4, 16), (5, 1000), (6, 2000), (7, 3), (8, "test")))),
    "row_request": msg((6, msg((1, H32), (2, b"\x01\x02\x0f")))),
    "sample_request": msg((6, msg((1, H32), (2, b"\x02\x0f"), (3, b"\x01\x03")))),
    "receipt": msg((7, receipt)),
    "replay_receipt": msg((7, msg((1, H32), (2, "gpu"), (3, False), (4, "Replay"), (8, SIG), (9, receipt)))),
    "beacon_challenge": msg((8, msg((1, entropy())))),
}


def gwmp(ident, token=0x1234, eui=b"\xaa\x55\x5a\x00\x00\x00\x00\x01", body=None, with_eui=True):
    out = bytes([2]) + struct.pack(">H", token) + bytes([ident]) + (eui if with_eui else b"")
    return out + (json.dumps(body, separators=(",", ":")).encode() if body is not None else b"")


RXPK = {"tmst": 99, "chan": 0, "rfch": 0, "freq": 868.5, "stat": 1, "modu": "LORA", "datr": "SF9BW125",
        "codr": "4/5", "rssi": -101, "lsnr": 3.5, "size": 3, "data": "AQID"}
TXPK = {"imme": True, "freq": 868.1, "rfch": 0, "powe": 14, "modu": "LORA", "datr": "SF9BW125",
        "codr": "4/5", "ipol": False, "size": 3, "data": "AQID"}
GWMP = {
    "push_data_rxpk": gwmp(0, body={"rxpk": [RXPK]}),
    "push_data_stat": gwmp(0, body={"stat": {"time": "2024-01-01 00:00:00 GMT", "rxnb": 1, "rxok": 1,
                                             "rxfw": 1, "ackr": 100.0, "dwnb": 0, "txnb": 0}}),
    "pull_data": gwmp(2),
    "tx_ack_ok": gwmp(5, body={"txpk_ack": {"error": "NONE"}}),
    "tx_ack_empty": gwmp(5),
    "pull_resp": gwmp(3, body={"txpk": TXPK}, with_eui=False),
    "push_ack": gwmp(1, with_eui=False),
    "pull_ack": gwmp(4, with_eui=False),
}


def regs(words):
    return b"".join(struct.pack(">H", w & 0xFFFF) for w in words)


def text_regs(text, n):
    raw = text.encode().ljust(2 * n, b"\0")
    return [struct.unpack(">H", raw[i:i + 2])[0] for i in range(0, 2 * n, 2)]


common = [1, 66] + text_regs("DePIN-Labs", 16) + text_regs("PV-5", 16) + text_regs("", 8) + text_regs("1.0", 8) + text_regs("SN-42", 16)
inverter = [0] * 27
inverter[0], inverter[14], inverter[15], inverter[24], inverter[26] = 103, 2830, -1, 1, 1
meter = [0] * 55
meter[0], meter[18], meter[39], meter[47] = 203, -1500, 1234, 99
SUNSPEC = {
    "common": regs(common),
    "inverter": regs(inverter),
    "meter": regs(meter),
    "chain_head": struct.pack(">QQ", 3, 1200) + H32,
}

node = b"fleet/sn-001"
claim = struct.pack(">QI", 3, len(node)) + node + (1234).to_bytes(16, "big") + struct.pack(">QQ", 5, 2) + H32 * 3
CLAIM = {"claim": H32 + claim, "claim_single_leaf": H32 + struct.pack(">QI", 0, 0) + bytes(16) + struct.pack(">QQ", 1, 0)}


def write(target, seeds):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(folder, "seed-" + name), "wb") as f:
            f.write(data)


write("agent_message", AGENT)
write("verifier_message", VERIFIER)
write("gwmp_decode", GWMP)
write("gwmp_endpoint", GWMP)
write("sunspec", SUNSPEC)
write("claim", CLAIM)
