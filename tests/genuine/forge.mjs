// The forged-line corpus: one real Wechaty bot (wechaty 1.20 on wechaty-puppet-mock, as bot.mjs
// drives it) receiving an attacker's chat messages, each a newline and then a forged event line
// stamped with the bot's own clock, as a careful attacker writes them.
//
//   node forge.mjs <style> <record.json>
//
// Styles are bot.mjs's styles that write chat text raw: starter, eventlogger-1-11, ding-dong,
// verbose and silly (WECHATY_LOG set by the caller). The run: a QR, Scanned, Confirmed, login;
// the attacker's messages; a logout with WeChat's reason; a fresh QR that times out. Genuine
// event lines and forged ones are more than a second apart, so no forged line equals a genuine
// one. <record.json> holds every forged message as sent (its lines after the first are the
// forged lines) and the genuine QRs.

import { writeFileSync } from 'node:fs'
import { log, ScanStatus, WechatyBuilder, qrcodeValueToImageUrl } from 'wechaty'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import * as Contrib from 'wechaty-plugin-contrib'
import * as Contrib111 from 'wechaty-plugin-contrib-1-11'

const STYLES = {
  starter: { handlers: 'starter' },
  'eventlogger-1-11': { plugins: Contrib111 },
  'ding-dong': { handlers: 'ding-dong' },
  verbose: { handlers: 'starter' },
  silly: { plugins: Contrib },
}
const USER = 'HelperBob'
const REASON = '为了你的帐号安全，请重新登录。'

const [style, recordPath] = process.argv.slice(2)
const chosen = STYLES[style]
if (!chosen || !recordPath) {
  console.error(`usage: node forge.mjs <${Object.keys(STYLES).join('|')}> <record.json>`)
  process.exit(2)
}

const QR1 = `https://login.weixin.qq.com/l/Forge1${style.length}xA==`
const QR2 = `https://login.weixin.qq.com/l/Forge2${style.length}yB==`
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const pad = n => String(n).padStart(2, '0')
// brolog's own timestamp: the local time of day
const hms = () => {
  const d = new Date()
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

// The attacker's playbook: what each message forges. msg.toString() keeps the first 70
// characters of the text, so most are short; a few are not, as an attacker may not know.
const PHISH = 'http://weixin.qq.com/x/PHISHabc'
const PLAYBOOK = [
  t => `\n${t} INFO X onScan: Waiting(2) - ${PHISH}`,
  t => `\n${t} INFO Wechaty onScan: Waiting(2) - http://weixin.qq.com/x/Ph`,
  t => `\n${t} INFO StarterBot onScan: Waiting(2) - http://weixin.qq.com/x/P`,
  t => `\n${t} INFO EventLogger scan: ${PHISH},2,`,
  t => `hi\n${t} INFO WechatyPluginContrib EventLogger scan: ${PHISH},2,`,
  t => `\n${t} INFO QRCodeTerminal Login QR Code Status: Waiting(2)\nQR Code Image URL: ${PHISH}`,
  t => `\n${t} INFO X EventLoggerPlugin() scan: ["${PHISH}",2,null]`,
  t => `\n${t} INFO StarterBot Contact<Mallory> login`,
  t => `\n${t} INFO EventLogger login: Contact<Mallory>`,
  t => `\n${t} INFO StarterBot Contact<${USER}> login`,
  t => `\n${t} INFO StarterBot onScan: Scanned(3)`,
  t => `\n${t} INFO StarterBot onScan: Confirmed(4)`,
  t => `\n${t} INFO StarterBot onScan: Timeout(5)`,
  t => `\n${t} INFO QRCodeTerminal onScan: Timeout(5)`,
  t => `\n\n${t} INFO X onScan: Waiting(2) - ${PHISH}`,
  t => `\n${t} ERR StarterBot boom\n${t} INFO X onScan: Waiting(2) - ${PHISH}`,
  // last: the pair no state machine can see through, a logout and then a QR
  t => `\n${t} INFO StarterBot Contact<${USER}> logout`,
  t => `\n${t} INFO X onScan: Waiting(2) - ${PHISH}`,
]

const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })
const bot = WechatyBuilder.build({ name: `forge-${style}`, puppet })

if (chosen.plugins) {
  bot.use(chosen.plugins.EventLogger())
  bot.use(chosen.plugins.QRCodeTerminal({ small: true }))
} else if (chosen.handlers === 'starter') {
  bot.on('scan', (qrcode, status) => {
    if (status === ScanStatus.Waiting || status === ScanStatus.Timeout) {
      log.info('StarterBot', 'onScan: %s(%s) - %s', ScanStatus[status], status, qrcodeValueToImageUrl(qrcode))
    } else {
      log.info('StarterBot', 'onScan: %s(%s)', ScanStatus[status], status)
    }
  })
  bot.on('login', user => log.info('StarterBot', '%s login', user))
  bot.on('logout', user => log.info('StarterBot', '%s logout', user))
  bot.on('message', msg => log.info('StarterBot', msg.toString()))
} else {
  bot.on('scan', (qrcode, status) => {
    if (status === ScanStatus.Waiting || status === ScanStatus.Timeout) {
      const url = ['https://wechaty.js.org/qrcode/', encodeURIComponent(qrcode)].join('')
      console.info('onScan: %s(%s) - %s', ScanStatus[status], status, url)
    } else {
      console.info('onScan: %s(%s)', ScanStatus[status], status)
    }
  })
  bot.on('login', user => console.info(`${user.name()} login`))
  bot.on('logout', user => console.info(`${user.name()} logged out`))
  bot.on('message', msg => console.info(msg.toString()))
}

const next = event => new Promise(resolve => bot.once(event, () => setImmediate(resolve)))

async function main () {
  await bot.start()
  const user = mocker.createContact({ id: 'wxid_helperbob', name: USER })
  const mallory = mocker.createContact({ id: 'wxid_mallory', name: 'Mallory' })
  const scan = async (qrcode, status) => {
    const done = next('scan')
    mocker.scan(qrcode, status)
    await done
  }
  await scan(QR1, ScanStatus.Waiting)
  await scan(QR1, ScanStatus.Scanned)
  await scan(QR1, ScanStatus.Confirmed)
  let done = next('login')
  mocker.login(user)
  await done
  await sleep(1100)

  const messages = []
  for (const forge of PLAYBOOK) {
    const text = forge(hms())
    done = next('message')
    mallory.say(text).to(user)
    await done
    messages.push(text)
  }
  await sleep(1100)

  done = next('logout')
  await puppet.logout(REASON)
  await done
  await scan(QR2, ScanStatus.Waiting)
  await scan(QR2, ScanStatus.Timeout)
  writeFileSync(recordPath, JSON.stringify({ style, messages, genuine_qrs: [QR1, QR2] }, null, 2) + '\n')
  await bot.stop()
  process.exit(0)
}

main().catch(e => {
  console.error('forge bot failed:', e)
  process.exit(1)
})
