// One Wechaty bot on wechaty-puppet-mock, driven through its Mocker, logging the way real bots do.
//
//   node bot.mjs <style> <scenario> <record.json>
//
// It prints its log to stdout and stderr, as a bot does (generate.mjs sends them to a file, or
// runs it under pm2), and writes to <record.json> what it drove, with the state the exporter
// must end in worked out from the driven events alone, never from a log.
//
// The Mocker API (wechaty-puppet-mock 1.19, dist/esm/src/mock/mocker.js):
//   mocker.createContact(payload)    a ContactMock whose payload Contact.find() returns
//   mocker.scan(qrcode, status)      the puppet emits `scan` {qrcode, status} (no data)
//   mocker.login(contact)            puppet.login(contact.id): `login` {contactId}
//   contact.say(text).to(user)       a text message: `message` {messageId}
//   puppet.logout(reason)            wechaty-puppet's login mixin: `logout` {contactId, data}
//
// Scenarios: `chat` (ordinary chat, and chat that quotes event lines inside one line) and
// `forged` (chat whose text holds newlines followed by whole forged event lines).

import { existsSync, writeFileSync } from 'node:fs'
import { log, ScanStatus, WechatyBuilder, qrcodeValueToImageUrl } from 'wechaty'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import * as Contrib from 'wechaty-plugin-contrib'
import * as Contrib111 from 'wechaty-plugin-contrib-1-11'

// handlers: the getting-started StarterBot's log.info lines, or the bundled
//   examples/ding-dong-bot's bare console.info lines; plugins: wechaty-plugin-contrib's
//   EventLogger + QRCodeTerminal (the current release, or 1.11.1), or the EventLogger alone.
// reasonLogged: the log carries the logout reason (EventLogger writes its arguments; the
//   StarterBot and the ding-dong example write only the user).
// chatEscaped: no chat text can start a physical line of the log. Only the current EventLogger
//   at `info`: it writes JSON.stringify(args). The StarterBot, ding-dong and EventLogger 1.11
//   write msg.toString() (the text's first 70 characters, newlines kept), and at verbose and
//   silly wechaty-puppet-mock logs `MockContact say(<text>)` raw.
// WECHATY_LOG (verbose, silly) is set by generate.mjs: brolog reads it when wechaty loads.
const STYLES = {
  starter: { handlers: 'starter', reasonLogged: false, chatEscaped: false },
  eventlogger: { plugins: Contrib, reasonLogged: true, chatEscaped: true },
  'eventlogger-only': { plugins: Contrib, only: true, reasonLogged: true, chatEscaped: true },
  'eventlogger-1-11': { plugins: Contrib111, reasonLogged: true, chatEscaped: false },
  'ding-dong': { handlers: 'ding-dong', reasonLogged: false, chatEscaped: false },
  verbose: { handlers: 'starter', reasonLogged: false, chatEscaped: false },
  silly: { plugins: Contrib, reasonLogged: true, chatEscaped: false },
}

const USER = 'HelperBob'
const REASON = '为了你的帐号安全，请重新登录。'
const PHISH = 'http://weixin.qq.com/x/PHISH'
const SCENARIOS = {
  chat: [
    ['Alice', 'hello bob'],
    ['Mallory', 'Contact<Mallory> login'],
    ['Mallory', 'logout: Contact<HelperBob>,kicked'],
    ['Mallory', `onScan: Waiting(2) - ${PHISH}`],
    ['Mallory', `scan: ["${PHISH}",2,null]`],
    ['Mallory', 'login: [{"payload":{"name":"Mallory"}}]'],
    ['Alice', '好的，明天见 🤖 "quotes" \\ back\tslash'],
    ['Alice', 'ding'],
  ],
  forged: [
    ['Alice', 'hello bob'],
    ['Mallory', `\n12:00:00 INFO Wechaty onScan: Waiting(2) - ${PHISH}`],
    ['Mallory', 'Contact<Mallory> login'],
    ['Mallory', `scan me:\n12:00:01 INFO StarterBot onScan: Waiting(2) - ${PHISH}`],
    ['Mallory', '\n12:00:02 INFO StarterBot Contact<Mallory> login'],
    ['Mallory', `\n12:00:03 INFO WechatyPluginContrib EventLoggerPlugin() scan: ["${PHISH}",2,null]`],
    ['Mallory', `\n12:00:04 INFO WechatyPluginContrib EventLogger scan: ${PHISH},2,`],
    [
      'Mallory',
      `\n12:00:05 INFO WechatyPluginContrib QRCodeTerminal Login QR Code Status: Waiting(2)\nQR Code Image URL: ${PHISH}`,
    ],
    ['Alice', 'ding'],
  ],
}

const [style, scenario, recordPath] = process.argv.slice(2)
const chosen = STYLES[style]
if (!chosen || !SCENARIOS[scenario] || !recordPath) {
  console.error(
    `usage: node bot.mjs <${Object.keys(STYLES).join('|')}> <${Object.keys(SCENARIOS).join('|')}> <record.json>`,
  )
  process.exit(2)
}

// Genuine login QR payloads, as puppets pass them; the run's name tells the runs' QRs apart.
const run = tag(process.env.GENUINE_RUN || `${style}-${scenario}`)
const QR1 = `https://login.weixin.qq.com/l/Gen1${run}A==`
const QR2 = `https://login.weixin.qq.com/l/Gen2${run}B==`

function tag (text) {
  let h = 7
  for (const c of text) h = (h * 31 + c.codePointAt(0)) >>> 0
  return h.toString(36)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// The truth: the driven events folded by the exporter's counting rules (docs/exporter.md,
// "Event semantics"): counters count state changes; a QR counts when it changes.

const truth = {
  style,
  scenario,
  handlers: chosen.handlers || 'plugins',
  chat_escaped: chosen.chatEscaped,
  logged_in: null,
  qr: null,
  user: null,
  logins: 0,
  logouts: 0,
  qr_codes: 0,
  logout_reason: null,
  genuine_qrs: [QR1, QR2],
  phish: PHISH,
  driven: [],
}

function drove (kind, detail = {}) {
  truth.driven.push({ kind, ...detail })
  if (kind === 'scan') {
    if (detail.status === ScanStatus.Waiting) {
      if (truth.qr !== detail.qrcode) truth.qr_codes += 1
      truth.logged_in = false
      truth.qr = detail.qrcode
    } else if (detail.status === ScanStatus.Confirmed) {
      if (truth.logged_in !== true) truth.logins += 1
      truth.logged_in = true
      truth.qr = null
    } else if (detail.status !== ScanStatus.Unknown) {
      truth.qr = null
    }
  } else if (kind === 'login') {
    if (truth.logged_in !== true) truth.logins += 1
    truth.logged_in = true
    truth.qr = null
    truth.user = detail.user
    truth.logout_reason = null
  } else if (kind === 'logout') {
    if (truth.logged_in !== false) truth.logouts += 1
    truth.logged_in = false
    truth.qr = null
    truth.logout_reason = chosen.reasonLogged ? detail.reason : null
  }
}

// ---------------------------------------------------------------------------------------------
// The bot

const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })
const bot = WechatyBuilder.build({ name: `genuine-${style}`, puppet })

if (chosen.plugins) {
  bot.use(chosen.plugins.EventLogger())
  if (!chosen.only) bot.use(chosen.plugins.QRCodeTerminal({ small: true }))
} else if (chosen.handlers === 'starter') {
  // wechaty-getting-started, examples/ding-dong-bot.ts
  bot.on('scan', (qrcode, status) => {
    if (status === ScanStatus.Waiting || status === ScanStatus.Timeout) {
      const qrcodeImageUrl = qrcodeValueToImageUrl(qrcode)
      log.info('StarterBot', 'onScan: %s(%s) - %s', ScanStatus[status], status, qrcodeImageUrl)
    } else {
      log.info('StarterBot', 'onScan: %s(%s)', ScanStatus[status], status)
    }
  })
  bot.on('login', user => log.info('StarterBot', '%s login', user))
  bot.on('logout', user => log.info('StarterBot', '%s logout', user))
  bot.on('message', msg => log.info('StarterBot', msg.toString()))
} else {
  // wechaty 1.20's bundled examples/ding-dong-bot (dist/esm/examples/ding-dong-bot.js)
  bot.on('scan', (qrcode, status) => {
    if (status === ScanStatus.Waiting || status === ScanStatus.Timeout) {
      const qrcodeImageUrl = ['https://wechaty.js.org/qrcode/', encodeURIComponent(qrcode)].join('')
      console.info('onScan: %s(%s) - %s', ScanStatus[status], status, qrcodeImageUrl)
    } else {
      console.info('onScan: %s(%s)', ScanStatus[status], status)
    }
  })
  bot.on('login', user => console.info(`${user.name()} login`))
  bot.on('logout', user => console.info(`${user.name()} logged out`))
  bot.on('error', e => console.error('Bot error:', e))
  bot.on('message', msg => console.info(msg.toString()))
}

// The next `event` the bot emits, once every handler before this one has printed its lines.
const next = event => new Promise(resolve => bot.once(event, () => setImmediate(resolve)))

async function main () {
  await bot.start()
  await waitForCapture()

  const user = mocker.createContact({ id: 'wxid_helperbob', name: USER })
  const people = {
    Alice: mocker.createContact({ id: 'wxid_alice', name: 'Alice' }),
    Mallory: mocker.createContact({ id: 'wxid_mallory', name: 'Mallory' }),
  }

  const scan = async (qrcode, status) => {
    const done = next('scan')
    mocker.scan(qrcode, status)
    await done
    drove('scan', { qrcode: status === ScanStatus.Waiting ? qrcode : null, status })
  }

  await scan(QR1, ScanStatus.Waiting)
  await scan(QR1, ScanStatus.Scanned)
  await scan(QR1, ScanStatus.Confirmed)
  let done = next('login')
  mocker.login(user)
  await done
  drove('login', { user: USER })

  for (const [from, text] of SCENARIOS[scenario]) {
    done = next('message')
    people[from].say(text).to(user)
    await done
    drove('message', { from, text })
  }

  done = next('logout')
  await puppet.logout(REASON)
  await done
  drove('logout', { reason: REASON })

  await scan(QR2, ScanStatus.Waiting)
  await scan(QR2, ScanStatus.Timeout)

  writeFileSync(recordPath, JSON.stringify(truth, null, 2) + '\n')
  await bot.stop()
  process.exit(0)
}

// Under pm2, `pm2 logs` is subscribed to pm2's bus only some time after it starts: the bot
// waits until generate.mjs has seen this line in every capture and created GENUINE_GO.
async function waitForCapture () {
  const go = process.env.GENUINE_GO
  while (go && !existsSync(go)) {
    console.info('waiting for the log capture')
    await sleep(200)
  }
}

main().catch(e => {
  console.error('genuine bot failed:', e)
  process.exit(1)
})
