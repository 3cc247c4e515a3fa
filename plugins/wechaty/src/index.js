// wechaty-exporter-plugin: a thin adapter between a Wechaty 1.x bot and wechaty-exporter.
//
//   bot.use(WechatyExporter({ name: 'alice', selfLog: '/var/log/bots/alice.self.log', ... }))
//
// - selfLog: scan, login, logout, ready and error lines (and heartbeat, probe) in the self-log
//   format the exporter parses.
// - delivery: an HTTP endpoint (POST /send) taking what the receiver's `webhook` messenger sends
//   and saying it to the named contact through this bot.
// - commands: text DMs from the configured admins go to the receiver's POST /commands; its
//   replies are said back. Strangers and rooms are dropped here, before anything leaves.
// - probe: a short DM to the peer bot's account every interval; the peer's probes are recorded in
//   the self-log, never answered nor forwarded.
// No command, alert or state logic lives here: that is the Python side's.

import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

import { FileBox } from 'file-box'

import {
  ContactAmbiguous,
  ContactNotFound,
  contactRecord,
  isContact,
  resolveContact,
} from './contacts.js'
import { SelfLog, formatSelfLog } from './selflog.js'

export { SelfLog, formatSelfLog }
export { resolveContact, ContactAmbiguous, ContactNotFound }

export const BOT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
export const PROBE_RE = /^wechaty-exporter probe v1 ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}) ([0-9]{1,12})$/
export const DELIVERY_TOKEN_ENV = 'WECHATY_EXPORTER_PLUGIN_TOKEN'
export const RECEIVER_TOKEN_ENV = 'WECHATY_EXPORTER_RECEIVER_TOKEN'

const MESSAGE_TEXT = 7 // wechaty-puppet types.Message.Text
const DEFAULT_MAX_BODY = 4 * 1024 * 1024
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/
// POST /send; /wechaty-exporter/send too, for a receiver config that names the plugin's prefix.
const SEND_PATHS = new Set(['/send', '/wechaty-exporter/send'])

/** The probe text member `name` sends as its `seq`-th probe. */
export function probeText (name, seq) {
  return `wechaty-exporter probe v1 ${name} ${seq}`
}

/**
 * Milliseconds from a number (ms) or a string like '500ms', '30s', '10m', '1h'.
 * @param {number|string} value
 * @param {string} what
 */
export function parseDuration (value, what) {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim()) : null
  if (m === null) throw new TypeError(`${what}: a duration in ms or like '30s', '10m', '1h': ${JSON.stringify(value)}`)
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] ?? 'ms']
  return Number(m[1]) * unit
}

/** Reads a secret from a file (trimmed), else from the environment variable; null if neither. */
function readSecret (file, envName, what) {
  if (file) {
    const value = fs.readFileSync(file, 'utf8').trim()
    if (!value) throw new Error(`${what}: the token file ${file} is empty`)
    return value
  }
  const value = (process.env[envName] ?? '').trim()
  return value || null
}

function sameSecret (given, expected) {
  const a = crypto.createHash('sha256').update(given).digest()
  const b = crypto.createHash('sha256').update(expected).digest()
  return crypto.timingSafeEqual(a, b)
}

function isLoopback (host) {
  if (host === 'localhost') return true
  if (net.isIPv4(host)) return host.startsWith('127.')
  if (net.isIPv6(host)) return host === '::1' || host.toLowerCase().startsWith('::ffff:127.')
  return false
}

/** 'host:port', ':port', a port number or '[v6]:port' → {host, port}; host defaults to loopback. */
function parseListen (value) {
  if (typeof value === 'number') return { host: '127.0.0.1', port: value }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(String(value))
  if (m === null) throw new TypeError(`delivery.listen: 'host:port' or a port: ${JSON.stringify(value)}`)
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) }
}

function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function short (error) {
  const text = error instanceof Error ? error.message : String(error)
  return text.replace(/\s+/g, ' ').slice(0, 200)
}

class HttpError extends Error {
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

function answer (res, status, body, headers = {}) {
  const data = JSON.stringify(body) + '\n'
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(data),
    'Cache-Control': 'no-store',
    ...headers,
  })
  res.end(data)
}

function readBody (req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `body over ${limit} bytes`))
      return
    }
    const chunks = []
    let size = 0
    let failed = false
    req.on('data', chunk => {
      if (failed) return
      size += chunk.length
      if (size > limit) {
        failed = true
        reject(new HttpError(413, `body over ${limit} bytes`))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)) })
    req.on('error', e => { if (!failed) { failed = true; reject(e) } })
  })
}

/** The webhook messenger's record, checked: {to, type, text} or {to, type, png, filename}. */
export function parseSendRequest (raw) {
  let body
  try {
    body = JSON.parse(raw.toString('utf8'))
  } catch (e) {
    throw new HttpError(400, `malformed JSON: ${short(e)}`)
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'the body must be a JSON object')
  }
  const { to, type } = body
  if (typeof to !== 'string' || !to || to.length > 256) throw new HttpError(400, '`to`: a contact (id, weixin, alias or name)')
  for (const key of ['bot', 'time']) {
    if (body[key] !== undefined && body[key] !== null && typeof body[key] !== 'string') {
      throw new HttpError(400, `\`${key}\` must be a string`)
    }
  }
  if (type === 'text') {
    if (typeof body.text !== 'string' || !body.text) throw new HttpError(400, 'a text record needs a non-empty `text`')
    return { to, type, text: body.text, bot: body.bot ?? null }
  }
  if (type === 'image') {
    const b64 = body.png_base64
    if (typeof b64 !== 'string' || !b64 || b64.length % 4 !== 0 || !BASE64_RE.test(b64)) {
      throw new HttpError(400, 'an image record needs `png_base64` (standard base64)')
    }
    const png = Buffer.from(b64, 'base64')
    if (png.length < PNG_SIGNATURE.length || !png.subarray(0, 8).equals(PNG_SIGNATURE)) {
      throw new HttpError(400, '`png_base64` is not a PNG')
    }
    let filename = body.filename ?? 'image.png'
    if (typeof filename !== 'string') throw new HttpError(400, '`filename` must be a string')
    filename = path.basename(filename).replace(/[^\w.-]/g, '_').slice(0, 100) || 'image.png'
    if (!filename.toLowerCase().endsWith('.png')) filename += '.png'
    return { to, type, png_base64: b64, filename, bot: body.bot ?? null }
  }
  throw new HttpError(400, '`type` must be "text" or "image"')
}

/** A reply from the receiver's /commands, checked. */
function checkReply (reply) {
  if (reply && reply.type === 'text' && typeof reply.text === 'string' && reply.text) return reply
  if (reply && reply.type === 'image' && typeof reply.png_base64 === 'string' && BASE64_RE.test(reply.png_base64)) {
    return reply
  }
  return null
}

/**
 * The plugin. See index.d.ts and README.md for the options.
 * @param {object} [options]  WechatyExporterOptions (index.d.ts)
 */
export function WechatyExporter (options = {}) {
  const opts = { ...options }
  const name = opts.name
  if (name !== undefined && (typeof name !== 'string' || !BOT_NAME_RE.test(name))) {
    throw new TypeError(`name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: ${JSON.stringify(name)}`)
  }
  if ((opts.commands || opts.probe) && !name) {
    throw new TypeError('name (this bot\'s name, as the exporter and receiver know it) is required with commands or probe')
  }

  // --- options, checked before the bot is touched
  const commands = opts.commands ? { ...opts.commands } : null
  if (commands) {
    if (typeof commands.receiverUrl !== 'string' || !/^https?:\/\//.test(commands.receiverUrl)) {
      throw new TypeError('commands.receiverUrl: the receiver\'s base URL, http(s)://host:port')
    }
    if (!Array.isArray(commands.admins) || commands.admins.length === 0 ||
        !commands.admins.every(a => typeof a === 'string' && a)) {
      throw new TypeError('commands.admins: a non-empty list of contact specs (id, weixin, alias or name)')
    }
    commands.url = commands.receiverUrl.replace(/\/+$/, '') + '/commands'
    commands.timeout = parseDuration(commands.timeout ?? '120s', 'commands.timeout') // a `restart` holds the answer
    commands.token = readSecret(commands.tokenFile, commands.tokenEnv ?? RECEIVER_TOKEN_ENV, 'commands')
  }
  const probe = opts.probe ? { ...opts.probe } : null
  if (probe) {
    if (typeof probe.peer !== 'string' || !probe.peer) throw new TypeError('probe.peer: the peer bot\'s account (id, weixin, alias or name)')
    if (typeof probe.peerBot !== 'string' || !BOT_NAME_RE.test(probe.peerBot)) {
      throw new TypeError('probe.peerBot: the peer bot\'s name ([A-Za-z0-9][A-Za-z0-9_.-]{0,63})')
    }
    probe.interval = parseDuration(probe.interval ?? '10m', 'probe.interval')
    if (probe.interval < 1) throw new TypeError('probe.interval must be positive')
    probe.jitter = probe.jitter ?? 0.1
    if (typeof probe.jitter !== 'number' || !(probe.jitter >= 0 && probe.jitter < 1)) {
      throw new TypeError('probe.jitter: a fraction in [0, 1)')
    }
  }
  const delivery = opts.delivery ? { ...opts.delivery } : null
  if (delivery) {
    Object.assign(delivery, parseListen(delivery.listen ?? 0))
    delivery.token = readSecret(delivery.tokenFile, delivery.tokenEnv ?? DELIVERY_TOKEN_ENV, 'delivery')
    if (!delivery.token) {
      if (!delivery.noAuth) {
        throw new Error(`delivery: a bearer token is required (delivery.tokenFile or $${DELIVERY_TOKEN_ENV}); ` +
          'noAuth: true only on a loopback address')
      }
      if (!isLoopback(delivery.host)) throw new Error(`delivery: refusing to listen on ${delivery.host} without a token`)
    }
    delivery.maxBodyBytes = delivery.maxBodyBytes ?? DEFAULT_MAX_BODY
  }
  const heartbeat = parseDuration(opts.heartbeat ?? '10m', 'heartbeat')
  const sendTimeout = parseDuration(opts.sendTimeout ?? 30000, 'sendTimeout')
  const logger = opts.logger ?? {
    info: (...a) => console.info('wechaty-exporter-plugin:', ...a),
    warn: (...a) => console.warn('wechaty-exporter-plugin:', ...a),
  }

  const selfLog = opts.selfLog ? new SelfLog(opts.selfLog, { mode: opts.selfLogMode ?? 0o600 }) : null
  const timers = new Set()
  let server = null
  let listening = Promise.resolve({})
  let bot = null
  let probeSeq = 0
  let closed = false
  let queue = Promise.resolve() // commands run one after the other, in arrival order

  const note = (kind, fields, level = 'INFO') => { if (selfLog) selfLog.write(kind, fields, { level }) }

  const later = (fn, ms) => {
    const t = setTimeout(() => { timers.delete(t); fn() }, ms)
    t.unref()
    timers.add(t)
  }

  // Sends stop at the puppet's MessageSendText / MessageSendFile: Contact.say() loads the sent
  // message back after the send succeeded, and a failure there would be reported as a failed
  // send (then sent twice on a retry).
  const sendText = (id, text) => withTimeout(bot.puppet.messageSendText(id, text), sendTimeout, 'send')
  const sendPng = (id, b64, filename) =>
    withTimeout(bot.puppet.messageSendFile(id, FileBox.fromBase64(b64, filename)), sendTimeout, 'send')

  function loggedIn () {
    try {
      return Boolean(bot && bot.isLoggedIn)
    } catch {
      return false
    }
  }

  // --- self-log
  function onScan (qrcode, status) {
    note('scan', { status: Number(status), qrcode: qrcode || null })
  }
  function onLogin (user) {
    note('login', { user: user.name() || null, id: user.id })
  }
  function onLogout (user, reason) {
    note('logout', { user: user.name() || null, id: user.id, reason: reason || null })
  }
  function onReady () {
    note('ready', {})
  }
  function onError (error) {
    note('error', { error: short(error) }, 'ERROR')
  }

  // --- messages: probes, admin commands; everything else is dropped here
  async function onMessage (msg) {
    try {
      if (msg.self() || msg.room() || msg.type() !== MESSAGE_TEXT) return
      const text = msg.text()
      const talker = msg.talker()
      const probeMatch = PROBE_RE.exec(text)
      if (probeMatch) {
        if (probe && await isContact(bot, talker, probe.peer)) {
          note('probe', { from: probeMatch[1], seq: Number(probeMatch[2]) })
        }
        return // never answered, never forwarded
      }
      if (!commands) return
      let admin = false
      for (const spec of commands.admins) {
        if (await isContact(bot, talker, spec)) { admin = true; break }
      }
      if (!admin) return
      const run = queue.then(() => forward(talker, text))
      queue = run.catch(() => {})
      await run
    } catch (e) {
      logger.warn(`a message could not be handled: ${short(e)}`)
    }
  }

  async function forward (talker, text) {
    const record = contactRecord(talker)
    const cut = value => String(value).slice(0, 256) // the receiver's limit per field
    const from = { id: record.id, name: cut(record.name) }
    if (record.weixin) from.weixin = cut(record.weixin)
    if (record.alias) from.alias = cut(record.alias)
    const headers = { 'Content-Type': 'application/json' }
    if (commands.token) headers.Authorization = `Bearer ${commands.token}`
    let replies
    try {
      const res = await fetch(commands.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ from, text, bot: name }),
        redirect: 'error',
        signal: AbortSignal.timeout(commands.timeout),
      })
      const body = await res.text()
      if (!res.ok) {
        logger.warn(`${commands.url} answered HTTP ${res.status}: ${body.slice(0, 200)}`)
        await sendText(talker.id, `wechaty-exporter: the receiver answered HTTP ${res.status}; the command was not run.`)
        return
      }
      const parsed = JSON.parse(body)
      if (!parsed || !Array.isArray(parsed.replies)) throw new Error('no `replies` list in the answer')
      replies = parsed.replies
    } catch (e) {
      logger.warn(`the receiver at ${commands.url} is unreachable: ${short(e)}`)
      await sendText(talker.id, 'wechaty-exporter: the receiver is unreachable; the command was not run. Try again later.')
      return
    }
    for (const raw of replies) {
      const reply = checkReply(raw)
      if (reply === null) {
        logger.warn('the receiver sent a reply of an unknown shape; skipped')
      } else if (reply.type === 'text') {
        await sendText(talker.id, reply.text)
      } else {
        await sendPng(talker.id, reply.png_base64, path.basename(reply.filename || 'image.png'))
      }
    }
  }

  // --- probe
  function scheduleProbe () {
    if (closed) return
    const spread = probe.interval * probe.jitter
    later(probeTick, Math.max(1, probe.interval + (Math.random() * 2 - 1) * spread))
  }
  async function probeTick () {
    try {
      await probeOnce()
    } finally {
      scheduleProbe()
    }
  }
  /** One probe now, if logged in; resolves once its self-log line is written. */
  async function probeOnce () {
    if (!loggedIn()) return
    const seq = ++probeSeq
    try {
      const peer = await resolveContact(bot, probe.peer)
      await sendText(peer.id, probeText(name, seq))
      note('probe_sent', { to: probe.peerBot, seq })
    } catch (e) {
      note('probe_failed', { to: probe.peerBot, error: short(e) }, 'WARN')
    }
  }

  // --- heartbeat (a quiet but running bot's self-log never looks stale)
  function scheduleHeartbeat () {
    if (closed) return
    later(() => { note('heartbeat', { logged_in: loggedIn() }); scheduleHeartbeat() }, heartbeat)
  }

  // --- delivery endpoint
  async function handle (req, res) {
    const url = new URL(req.url ?? '/', 'http://plugin')
    if (url.pathname === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'GET /healthz')
      answer(res, 200, { ok: true, logged_in: loggedIn() })
      return
    }
    if (!SEND_PATHS.has(url.pathname)) throw new HttpError(404, 'POST /send, GET /healthz')
    if (req.method !== 'POST') throw new HttpError(405, 'POST /send')
    if (delivery.token) {
      const auth = req.headers.authorization ?? ''
      const m = /^Bearer +(\S+)\s*$/i.exec(auth)
      if (m === null || !sameSecret(m[1], delivery.token)) throw new HttpError(401, 'a valid bearer token is required')
    }
    const record = parseSendRequest(await readBody(req, delivery.maxBodyBytes))
    if (!loggedIn()) throw new HttpError(503, 'the bot is not logged in')
    let contact
    try {
      contact = await withTimeout(resolveContact(bot, record.to), sendTimeout, 'contact lookup')
    } catch (e) {
      if (e instanceof ContactNotFound) throw new HttpError(404, e.message)
      if (e instanceof ContactAmbiguous) throw new HttpError(409, e.message)
      throw new HttpError(503, `contact lookup failed: ${short(e)}`)
    }
    try {
      if (record.type === 'text') await sendText(contact.id, record.text)
      else await sendPng(contact.id, record.png_base64, record.filename)
    } catch (e) {
      throw new HttpError(503, `send failed: ${short(e)}`)
    }
    answer(res, 200, { ok: true, to: contact.id, type: record.type })
  }

  function startServer () {
    server = http.createServer((req, res) => {
      handle(req, res).catch(e => {
        const status = e instanceof HttpError ? e.status : 500
        if (!(e instanceof HttpError)) logger.warn(`delivery: ${short(e)}`)
        const headers = status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {}
        if (status === 413) headers.Connection = 'close'
        if (!res.headersSent) answer(res, status, { ok: false, error: e instanceof HttpError ? e.message : 'internal error' }, headers)
      })
    })
    server.requestTimeout = 60000
    listening = new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(delivery.port, delivery.host, () => {
        server.off('error', reject)
        const addr = server.address()
        logger.info(`delivery endpoint on http://${delivery.host.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/send`)
        resolve({ delivery: { host: addr.address, port: addr.port } })
      })
    })
    listening.catch(e => logger.warn(`delivery: cannot listen on ${delivery.host}:${delivery.port}: ${short(e)}`))
  }

  async function close () {
    closed = true
    for (const t of timers) clearTimeout(t)
    timers.clear()
    if (bot) {
      bot.off('scan', onScan)
      bot.off('login', onLogin)
      bot.off('logout', onLogout)
      bot.off('ready', onReady)
      bot.off('error', onError)
      bot.off('message', onMessage)
    }
    if (server) {
      const s = server
      server = null
      await new Promise(resolve => {
        s.close(() => resolve())
        s.closeAllConnections?.()
      })
    }
    if (selfLog) selfLog.close()
  }

  function plugin (wechaty) {
    if (bot !== null) throw new Error('one WechatyExporter() per bot: call it again for another bot')
    bot = wechaty
    if (selfLog) selfLog.open() // an unusable path fails here, at bot.use()
    bot.on('scan', onScan)
    bot.on('login', onLogin)
    bot.on('logout', onLogout)
    bot.on('ready', onReady)
    bot.on('error', onError)
    bot.on('message', onMessage)
    if (delivery) startServer()
    if (probe) scheduleProbe()
    if (selfLog && heartbeat > 0) scheduleHeartbeat()
    return () => { close().catch(() => {}) }
  }
  plugin.ready = () => listening
  plugin.close = close
  plugin.probeNow = () => probe ? probeOnce() : Promise.resolve()
  return plugin
}

export default WechatyExporter
