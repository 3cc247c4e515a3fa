// A real Wechaty 1.x bot on wechaty-puppet-mock, driven through its Mocker, with the plugin.
//
// The Mocker API (wechaty-puppet-mock 1.19, dist/esm/src/mock/mocker.js):
//   mocker.createContact(payload)  a ContactMock whose payload the puppet answers
//   mocker.createRoom(payload)     a RoomMock (memberIdList)
//   mocker.scan(qrcode, status)    the puppet emits `scan`
//   mocker.login(contact)          puppet.login(contact.id): `login`
//   contact.say(text).to(x)        a text message from contact to x (a contact or room)
//   puppet.logout(reason)          `logout` with the reason
// What the bot sends is recorded at the puppet's MessageSendText / MessageSendFile (the calls
// the plugin makes), then passed on to the mock puppet as usual.

import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

import { ScanStatus, WechatyBuilder } from 'wechaty'
import { PuppetMock, mock } from 'wechaty-puppet-mock'

import { WechatyExporter } from '../src/index.js'

export { ScanStatus }

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

export function tempDir (prefix = 'wechaty-exporter-plugin-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

/** Polls `check` until it returns a truthy value (returned) or `ms` pass (throws). */
export async function until (check, ms = 5000, what = 'condition') {
  const end = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

export function readLines (file) {
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
}

/** [kind, fields, level] of each self-log line. */
export function selfLogEvents (file) {
  return readLines(file).map(line => {
    const m = /^\S+ ([A-Z]+) wechaty-exporter ([a-z][a-z0-9_]*) (.*)$/.exec(line)
    if (m === null) throw new Error(`not a self-log line: ${line}`)
    return { level: m[1], kind: m[2], fields: JSON.parse(m[3]) }
  })
}

/**
 * A started bot with the plugin installed.
 * @param {object} pluginOptions  WechatyExporter options
 * @param {{user?: object, name?: string}} [opts]
 */
export async function startBot (pluginOptions, opts = {}) {
  const mocker = new mock.Mocker()
  const puppet = new PuppetMock({ mocker })
  const bot = WechatyBuilder.build({ name: opts.name ?? 'plugin-test', puppet })
  const sent = []
  let failSends = null
  const sendText = puppet.messageSendText.bind(puppet)
  const sendFile = puppet.messageSendFile.bind(puppet)
  puppet.messageSendText = async (to, text) => {
    if (failSends) throw failSends
    sent.push({ to, type: 'text', text })
    return sendText(to, text)
  }
  puppet.messageSendFile = async (to, file) => {
    if (failSends) throw failSends
    sent.push({ to, type: 'file', name: file.name, base64: await file.toBase64() })
    return sendFile(to, file)
  }
  const plugin = WechatyExporter({ logger: { info () {}, warn () {} }, ...pluginOptions })
  bot.use(plugin)
  await bot.start()
  const user = mocker.createContact({ id: 'wxid_helper', name: 'HelperAlice', ...(opts.user ?? {}) })

  // The next `event` the bot emits, once every listener ran (the plugin's first).
  const next = event => new Promise(resolve => bot.once(event, (...args) => setImmediate(() => resolve(args))))

  return {
    mocker,
    puppet,
    bot,
    plugin,
    user,
    sent,
    failSends (error) { failSends = error },
    next,
    async login () {
      const done = next('login')
      mocker.login(user)
      await done
    },
    async scan (qrcode, status) {
      const done = next('scan')
      mocker.scan(qrcode, status)
      await done
    },
    async logout (reason = 'kicked') {
      const done = next('logout')
      await puppet.logout(reason)
      await done
    },
    /** A text message from `contact` to the bot (or to `room`); resolves once it was handled. */
    async hear (contact, text, room = null) {
      const done = next('message')
      contact.say(text).to(room ?? user)
      await done
      await sleep(20)
    },
    async stop () {
      await plugin.close()
      await bot.stop()
    },
  }
}

/** A local HTTP server recording each request; `reply(req, body)` gives [status, json]. */
export async function fakeServer (reply) {
  const requests = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const record = { method: req.method, url: req.url, headers: req.headers, body }
      requests.push(record)
      const [status, json] = reply(record)
      const data = JSON.stringify(json)
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) })
      res.end(data)
    })
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    requests,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise(resolve => { server.close(() => resolve()); server.closeAllConnections() }),
  }
}

/** A 1x1 PNG. */
export const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
