// Drives our GWMP endpoint with npm `packet-forwarder` 1.0.8 (a packet-forwarder client
// not written here): PUSH_DATA with an rxpk and with a stat through its sendUplink(), then
// the parts it lacks, by hand on its own socket: a PULL_DATA keepalive (expects PULL_ACK)
// and a TX_ACK answering the PULL_RESP the endpoint sends.
// Usage: NODE_PATH=<npm dir>/node_modules node forwarder.js <port>
'use strict'
const PacketForwarder = require('packet-forwarder')

const port = Number(process.argv[2])
const EUI = 'AA555A0000000101'
const deadline = (promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), 5000))
])

async function main () {
  const pf = new PacketForwarder({ gateway: EUI, target: '127.0.0.1', port })
  await deadline(pf.sendUplink({
    rxpk: [{
      time: '2026-11-21T10:00:00.000000Z', tmst: 3512348611, chan: 2, rfch: 0, freq: 868.3,
      stat: 1, modu: 'LORA', datr: 'SF9BW125', codr: '4/5', rssi: -97, lsnr: 6.5, size: 4,
      data: Buffer.from([0xde, 0xad, 0xbe, 0xef]).toString('base64')
    }]
  }), 'PUSH_ACK for rxpk')
  console.log('push_ack rxpk')
  await deadline(pf.sendUplink({
    stat: { time: '2026-11-21 10:00:00 GMT', rxnb: 1, rxok: 1, rxfw: 1, ackr: 100.0, dwnb: 0, txnb: 0 }
  }), 'PUSH_ACK for stat')
  console.log('push_ack stat')

  // PULL_DATA: [2, token, token, 2] + EUI, on the forwarder's own socket.
  const token = Buffer.from([0x5a, 0xa5])
  const pullAck = new Promise(resolve => pf.on('message', msg => {
    if (msg[3] === 4 && msg[1] === token[0] && msg[2] === token[1]) resolve()
  }))
  const pullResp = new Promise(resolve => pf.on('message', msg => {
    if (msg[3] === 3) resolve(msg)
  }))
  const pull = Buffer.concat([Buffer.from([2]), token, Buffer.from([2]), Buffer.from(EUI, 'hex')])
  pf.socket.send(pull, port, '127.0.0.1')
  await deadline(pullAck, 'PULL_ACK')
  console.log('pull_ack')

  const resp = await deadline(pullResp, 'PULL_RESP')
  const txpk = JSON.parse(resp.slice(4).toString('utf8')).txpk
  console.log(`pull_resp freq=${txpk.freq} powe=${txpk.powe} size=${txpk.size} imme=${txpk.imme}`)
  const ack = Buffer.concat([
    Buffer.from([2, resp[1], resp[2], 5]), Buffer.from(EUI, 'hex'),
    Buffer.from(JSON.stringify({ txpk_ack: { error: 'NONE' } }))
  ])
  pf.socket.send(ack, port, '127.0.0.1')
  console.log('tx_ack sent')
  setTimeout(() => pf.close().then(() => process.exit(0)), 200)
}

main().catch(err => { console.error(err.message); process.exit(1) })
