#!/usr/bin/env python3
"""A third-party SunSpec device for interop tests: pymodbus's Modbus TCP server holding a
register image that pysunspec2 builds (model 1 + an inverter or meter model + end marker).

Nothing here is our code's idea of SunSpec: the register layout comes from pysunspec2's
model definitions and the wire protocol from pymodbus, so a reader that decodes this
correctly agrees with two independent implementations.

Usage (from the shared venv, see sim/setup.sh):
  sunspec_server.py --port 15020 [--model 103|203] [--serial SN] [--watts 2830] [--wh 123456]
Prints "READY <port>" on stdout once it is listening; runs until killed.
"""
import argparse
import asyncio
import logging
import sys

import sunspec2.device as device
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartAsyncTcpServer

BASE = 40000


def model_registers(model_id, values):
    """The registers (ID, L and body) pysunspec2 produces for `model_id` set to `values`."""
    model = device.Model(model_id=model_id)
    # get_mb() covers the whole model, ID and L included; pysunspec2 leaves both unset.
    # L counts the registers after ID and L.
    model.points["ID"].set_value(model_id)
    model.points["L"].set_value(len(model.get_mb()) // 2 - 2)
    for name, value in values.items():
        model.points[name].set_value(value)
    image = model.get_mb()
    return [int.from_bytes(image[i:i + 2], "big") for i in range(0, len(image), 2)]


def register_image(args):
    common = model_registers(1, {
        "Mn": "DePIN-Labs", "Md": f"SIM-{args.model}", "Vr": "1.0", "SN": args.serial, "DA": 1,
    })
    if args.model // 100 == 1:
        # Inverter 101-103: W with W_SF, WH (acc32) with WH_SF.
        power = model_registers(args.model, {
            "W": args.watts, "W_SF": 0, "WH": args.wh, "WH_SF": 0, "Hz": 5000, "Hz_SF": -2,
        })
    else:
        # Meter 201-204: W with W_SF, TotWhExp/TotWhImp (acc32) with TotWh_SF; -1 scale
        # factors exercise the reader's scaling.
        power = model_registers(args.model, {
            "W": args.watts * 10, "W_SF": -1, "TotWhExp": args.wh * 10, "TotWhImp": 42 * 10,
            "TotWh_SF": -1, "Hz": 500, "Hz_SF": -1,
        })
    return [0x5375, 0x6E53] + common + power + [0xFFFF, 0]


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--model", type=int, default=103, choices=[101, 102, 103, 201, 202, 203, 204])
    parser.add_argument("--serial", default="PYMODBUS-0001")
    parser.add_argument("--watts", type=int, default=2830)
    parser.add_argument("--wh", type=int, default=123456)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    regs = register_image(args)
    # pymodbus shifts holding-register addresses by one inside the device context
    # (research tooling-probe §7), so the block starts at BASE + 1 to serve BASE.
    block = ModbusSequentialDataBlock(BASE + 1, regs)
    context = ModbusServerContext(devices=ModbusDeviceContext(hr=block), single=True)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, lambda: print(f"READY {args.port}", flush=True))
    await StartAsyncTcpServer(context=context, address=(args.host, args.port))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
