// The real Wechaty puppet service (wechaty-puppet-service's PuppetServer) on wechaty-puppet-mock,
// with the server's defaults: TLS with the Wechaty CA's bundled `insecure` certificate, token
// checked. Tests (tests/puppetservice/kit.py) drive the mock account from stdin.
//
//   node server.mjs <port> <token> [--no-tls]
//
// stdout carries one JSON object a line:
//   {"event":"ready","port":P,"me":ID,"contacts":{"admin":ID,"bob":ID,...}}  once serving
//   {"event":"sent","to":ID,"text":T} / {"event":"sent","to":ID,"file":NAME,"base64":B}
//                                     each message the bot sent (MessageSendText / ...File)
//   {"reply":N,"ok":true,...} / {"reply":N,"ok":false,"error":E}   an answer to command N
// stdin takes one JSON command a line, {"id":N,"op":...}:
//   scan {qrcode,status}   the Mocker's scan: the puppet emits `scan`
//   login                  the Mocker logs the account (`me`) in
//   logout {reason}        the puppet logs out (wechaty-puppet's logout: `logout` {contactId,data})
//   say {from,text}        contact `from` (a key of `contacts`) sends the account a text
//   stop                   the gRPC server shuts down, then the process exits
//
// The Mocker API (wechaty-puppet-mock 1.19, dist/esm/src/mock/mocker.js): createContact(payload),
// scan(qrcode, status), login(contact), contact.say(text).to(contact).

import { createInterface } from 'node:readline'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import { PuppetServer } from 'wechaty-puppet-service'

const [portArg, token, ...flags] = process.argv.slice(2)
if (!portArg || !token) {
  console.error('usage: node server.mjs <port> <token> [--no-tls]')
  process.exit(2)
}
if (flags.includes('--no-tls')) {
  process.env.WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER = 'true'
} else {
  delete process.env.WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER
}

const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')

const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })

// The account, and contacts to talk to it; ids are the Mocker's own (opaque).
// MOCK_ACCOUNT_NAME: the account's display name (tests give it newlines and the like).
const me = mocker.createContact({ name: process.env.MOCK_ACCOUNT_NAME || 'Peer Bot', weixin: 'peer_bot' })
const contacts = {
  admin: mocker.createContact({ name: 'Ada Admin', alias: 'oncall-boss', weixin: 'ada_weixin' }),
  bob: mocker.createContact({ name: 'Bob', weixin: 'bob_wx' }),
  twin1: mocker.createContact({ name: 'Twin' }),
  twin2: mocker.createContact({ name: 'Twin' }),
}

// What the bot sends, reported before the mock takes it (it then echoes it as a message).
const sendText = puppet.messageSendText.bind(puppet)
puppet.messageSendText = async (conversationId, text) => {
  out({ event: 'sent', to: conversationId, text })
  return sendText(conversationId, text)
}
const sendFile = puppet.messageSendFile.bind(puppet)
puppet.messageSendFile = async (conversationId, file) => {
  out({ event: 'sent', to: conversationId, file: file.name, base64: await file.toBase64() })
  return sendFile(conversationId, file)
}

const server = new PuppetServer({ endpoint: `127.0.0.1:${portArg}`, puppet, token })
await server.start()
out({
  event: 'ready',
  port: Number(portArg),
  me: me.id,
  contacts: Object.fromEntries(Object.entries(contacts).map(([k, c]) => [k, c.id])),
})

const ops = {
  scan: ({ qrcode, status }) => mocker.scan(qrcode ?? '', status ?? 2),
  login: () => mocker.login(me),
  logout: async ({ reason }) => puppet.logout(reason ?? 'logged out by the phone'),
  say: ({ from, text }) => {
    const talker = contacts[from]
    if (!talker) throw new Error(`no contact ${from}`)
    talker.say(text).to(me)
  },
  stop: async () => {
    await server.stop()
    stopped = true
    setImmediate(() => process.exit(0))
  },
}
let stopped = false

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  let id = null
  try {
    const command = JSON.parse(line)
    id = command.id
    const op = ops[command.op]
    if (!op) throw new Error(`unknown op ${command.op}`)
    await op(command)
    out({ reply: id, ok: true })
  } catch (e) {
    out({ reply: id, ok: false, error: String(e && e.message || e) })
  }
}
if (!stopped) await server.stop()
process.exit(0)
