// A driveable TypeScript-style duet member: a real Wechaty 1.x bot on wechaty-puppet-mock with
// this plugin, driven from outside (an end-to-end test) over a small control HTTP port.
//
//   node test/duet-bot.mjs <config.json>        (or the JSON itself in $DUET_BOT_CONFIG)
//
// config.json:
//   {
//     "user":     {"id": "wxid_alice", "name": "HelperAlice"},     the bot's own account
//     "contacts": [{"id": "wxid_admin", "name": "Admin", "weixin": "admin_wx", "friend": true},
//                  {"id": "wxid_bob", "name": "HelperBob"}],     contacts the bot knows
//     "plugin":   {...WechatyExporter options: name, selfLog, delivery, commands, probe...},
//     "control":  "127.0.0.1:0",                                    control listen address
//     "relay":    {"to": "wxid_bob", "control": "http://127.0.0.1:PORT"}   optional, see below
//   }
// Tokens come from the plugin options' files or the environment variables, as in production.
//
// Once up it prints one JSON line on stdout:
//   {"event":"listening","control":"http://127.0.0.1:PORT","delivery":{"host":..,"port":..}|null}
// and then nothing else on stdout (its diagnostics go to stderr).
//
// Control API (JSON bodies; every answer is JSON; loopback only):
//   POST /scan     {"qrcode": "...", "status": 2}   the puppet's scan event (ScanStatus numbers)
//   POST /login    {}                               logs in as config.user
//   POST /logout   {"reason": "..."}
//   POST /message  {"from": "<contact id>", "text": "...", "room": "<room id>"?}
//                  a text message to the bot (a DM, or in a room); answers once it was handled
//   POST /contact  {"id", "name", "weixin"?, "alias"?, "friend"?}   one more contact
//   POST /room     {"id": "x@chatroom", "topic": "...", "memberIdList": [...]}
//   POST /probe    {}                               one probe now (plugin.probeNow())
//   POST /ready    {}                               the puppet's ready event
//   POST /error    {"message": "..."}               the puppet's error event
//   POST /fail-sends {"error": "text" | null}      make the puppet's sends fail (or not)
//   POST /relay    {"to": "<contact id>", "control": "<peer's control URL>"}   (re)set the relay
//   GET  /sent     {"sent": [{"to", "type": "text", "text"} | {"to", "type": "file", "name", "base64"}]}
//   GET  /state    {"logged_in": bool}
//   POST /stop     stops the bot and exits 0 (so does SIGTERM)
//
// Relay: two mocked bots share no WeChat. With a relay, whatever this bot sends to the contact
// `relay.to` (the peer bot's account as this bot knows it) is POSTed to the peer's control
// /message as coming from this bot's own account id: the duet's probes (and any other DM between
// the two) cross between the processes as they would through WeChat.

import fs from 'node:fs'
import http from 'node:http'

import { WechatyBuilder } from 'wechaty'
import { PuppetMock, mock } from 'wechaty-puppet-mock'

import { WechatyExporter } from '../src/index.js'

const config = JSON.parse(process.env.DUET_BOT_CONFIG || fs.readFileSync(process.argv[2] || '/dev/stdin', 'utf8'))
if (!config.user?.id || !config.plugin) {
  console.error('usage: node duet-bot.mjs <config.json>: {"user": {"id", "name"}, "plugin": {...}, ...}')
  process.exit(2)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })
const bot = WechatyBuilder.build({ name: config.plugin.name || 'duet-bot', puppet })
const sent = []
let failSends = null
let relay = config.relay ?? null

const sendText = puppet.messageSendText.bind(puppet)
const sendFile = puppet.messageSendFile.bind(puppet)
puppet.messageSendText = async (to, text) => {
  if (failSends) throw new Error(failSends)
  sent.push({ to, type: 'text', text })
  const done = await sendText(to, text)
  relayOut(to, text)
  return done
}
puppet.messageSendFile = async (to, file) => {
  if (failSends) throw new Error(failSends)
  sent.push({ to, type: 'file', name: file.name, base64: await file.toBase64() })
  return sendFile(to, file)
}

function relayOut (to, text) {
  if (!relay || relay.to !== to) return
  fetch(new URL('/message', relay.control), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ from: config.user.id, text }),
  }).then(r => r.text()).catch(e => console.error(`duet-bot: relay to ${relay.control} failed: ${e.message}`))
}

const say = level => message => process.stderr.write(`wechaty-exporter-plugin ${level}: ${message}\n`)
const plugin = WechatyExporter({ logger: { info: say('info'), warn: say('warn') }, ...config.plugin })
bot.use(plugin)
await bot.start()
const user = mocker.createContact({ ...config.user })
const contacts = new Map()
const rooms = new Map()
const addContact = payload => { contacts.set(payload.id, mocker.createContact({ ...payload })) }
for (const c of config.contacts ?? []) addContact(c)

const next = event => new Promise(resolve => bot.once(event, () => setImmediate(resolve)))

const ops = {
  'POST /scan': async ({ qrcode, status }) => {
    const done = next('scan')
    mocker.scan(qrcode ?? '', Number(status ?? 2))
    await done
    return {}
  },
  'POST /login': async () => {
    if (bot.isLoggedIn) return { already: true }
    const done = next('login')
    mocker.login(user)
    await done
    return {}
  },
  'POST /logout': async ({ reason }) => {
    if (!bot.isLoggedIn) return { already: true }
    const done = next('logout')
    await puppet.logout(reason ?? 'logged out')
    await done
    return {}
  },
  'POST /message': async ({ from, text, room }) => {
    const talker = contacts.get(from)
    if (!talker) throw new Error(`no contact ${from} (POST /contact first)`)
    const target = room ? rooms.get(room) : user
    if (!target) throw new Error(`no room ${room}`)
    const done = next('message')
    talker.say(String(text)).to(target)
    await done
    await sleep(20)
    return {}
  },
  'POST /contact': async payload => { addContact(payload); return {} },
  'POST /room': async payload => { rooms.set(payload.id, mocker.createRoom({ ...payload })); return {} },
  'POST /probe': async () => { await plugin.probeNow(); return {} },
  'POST /ready': async () => {
    const done = next('ready')
    puppet.emit('ready', { data: 'ready' })
    await done
    return {}
  },
  'POST /error': async ({ message }) => {
    const done = next('error')
    puppet.emit('error', { data: String(message ?? 'error') })
    await done
    return {}
  },
  'POST /fail-sends': async ({ error }) => { failSends = error || null; return {} },
  'POST /relay': async payload => { relay = payload; return {} },
  'GET /sent': async () => ({ sent }),
  'GET /state': async () => ({ logged_in: Boolean(bot.isLoggedIn) }),
  'POST /stop': async () => { setImmediate(stop); return {} },
}

const control = http.createServer((req, res) => {
  const chunks = []
  req.on('data', c => chunks.push(c))
  req.on('end', async () => {
    let status = 200
    let body
    try {
      const op = ops[`${req.method} ${new URL(req.url, 'http://x').pathname}`]
      if (!op) {
        status = 404
        body = { error: `unknown: ${req.method} ${req.url}` }
      } else {
        const raw = Buffer.concat(chunks).toString('utf8')
        body = await op(raw ? JSON.parse(raw) : {})
      }
    } catch (e) {
      status = 400
      body = { error: e.message }
    }
    const data = JSON.stringify(body)
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) })
    res.end(data)
  })
})

const [, host = '127.0.0.1', port = '0'] = /^(?:\[?([^\]]*)\]?:)?(\d+)$/.exec(config.control ?? '127.0.0.1:0') ?? []
await new Promise(resolve => control.listen(Number(port), host || '127.0.0.1', resolve))
const { delivery = null } = await plugin.ready()
const addr = control.address()
process.stdout.write(JSON.stringify({ event: 'listening', control: `http://${addr.address}:${addr.port}`, delivery }) + '\n')

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  control.close()
  control.closeAllConnections?.()
  await plugin.close()
  await bot.stop().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
