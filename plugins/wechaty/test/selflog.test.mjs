// Self-log: the line format, the file's safety, and a whole bot life on the real Wechaty.
//
// With PLUGIN_TEST_OUT set (tests/plugin/test_plugin.py), the lifecycle test leaves its self-log
// (lifecycle.self.log) and what it drove (lifecycle.json) there, for the Python parser to read.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'

import { SelfLog, formatSelfLog } from '../src/index.js'
import { localStamp } from '../src/selflog.js'
import { ScanStatus, readLines, selfLogEvents, sleep, startBot, tempDir } from './harness.mjs'

const LINE_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d [A-Z]+ wechaty-exporter [a-z][a-z0-9_]* \{.*\}$/

test('format: RFC 3339 local time with ms and offset, level, kind, compact JSON', () => {
  const at = new Date(Date.UTC(2026, 10, 25, 2, 0, 0, 123))
  const line = formatSelfLog('login', { user: 'Bob', id: 'wxid_1' }, at)
  assert.match(line, LINE_RE)
  assert.ok(line.endsWith(' INFO wechaty-exporter login {"user":"Bob","id":"wxid_1"}'), line)
  const stamp = localStamp(at)
  assert.equal(new Date(stamp).getTime(), at.getTime(), 'the stamp is the same instant')
  assert.equal(formatSelfLog('error', {}, at, 'ERROR').split(' ')[1], 'ERROR')
  assert.throws(() => formatSelfLog('Login', {}, at))
  assert.throws(() => formatSelfLog('login', {}, at, 'info'))
})

test('format: newlines, line separators and lone surrogates are escaped, the rest kept', () => {
  const hostile = 'a\nb\r\nc\u0085d\u2028e\u2029f\ud800g\udc00h 😀 伙伴 "q" \\'
  const line = formatSelfLog('logout', { user: hostile, reason: null }, new Date())
  assert.equal(line.split(/\r\n|[\n\r\u0085\u2028\u2029]/).length, 1, 'one physical line')
  assert.ok(!/[\ud800-\udfff]/u.test(line), 'no lone surrogate')
  assert.ok(line.includes('\\u0085') && line.includes('\\u2028') && line.includes('\\u2029'))
  assert.ok(line.includes('\\ud800') && line.includes('\\udc00'))
  assert.ok(line.includes('😀 伙伴'), 'non-ASCII written as is')
  const body = JSON.parse(line.slice(line.indexOf('{')))
  assert.equal(body.user, hostile)
})

test('file: created 0600, a wider mode tightened, a symlink and a hard link refused', () => {
  const dir = tempDir()
  const file = path.join(dir, 'sub', 'alice.self.log')
  const log = new SelfLog(file)
  log.write('ready', {})
  assert.equal(fs.statSync(file).mode & 0o777, 0o600)
  log.close()

  const wide = path.join(dir, 'wide.log')
  fs.writeFileSync(wide, '', { mode: 0o666 })
  fs.chmodSync(wide, 0o666)
  new SelfLog(wide).open()
  assert.equal(fs.statSync(wide).mode & 0o777, 0o600)

  const target = path.join(dir, 'target')
  fs.writeFileSync(target, 'untouched\n')
  const link = path.join(dir, 'link.log')
  fs.symlinkSync(target, link)
  assert.throws(() => new SelfLog(link).open(), /symbolic link/)
  const errors = []
  new SelfLog(link, { onError: e => errors.push(e) }).write('ready', {})
  assert.equal(errors.length, 1)
  assert.equal(fs.readFileSync(target, 'utf8'), 'untouched\n')

  const hard = path.join(dir, 'hard.log')
  fs.linkSync(target, hard)
  assert.throws(() => new SelfLog(hard).open(), /hard links/)
  assert.equal(fs.readFileSync(target, 'utf8'), 'untouched\n')
})

test('file: reopened at the path when rotated away', () => {
  const dir = tempDir()
  const file = path.join(dir, 'alice.self.log')
  const log = new SelfLog(file)
  log.write('ready', {})
  fs.renameSync(file, file + '.1')
  log.write('heartbeat', { logged_in: true })
  log.close()
  assert.equal(readLines(file + '.1').length, 1)
  assert.equal(readLines(file).length, 1)
  assert.match(readLines(file)[0], / heartbeat /)
})

test('bot.use() refuses an unusable self-log path at once', async () => {
  const dir = tempDir()
  fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'link.log'))
  await assert.rejects(startBot({ selfLog: path.join(dir, 'link.log') }), /symbolic link/)
})

const USER = 'HelperAlice'
const REASON = '为了你的帐号安全，请重新登录。'
const PHISH = 'http://weixin.qq.com/x/PHISH'
const QR1 = 'https://login.weixin.qq.com/l/PluginQr1A=='
const QR2 = 'https://login.weixin.qq.com/l/PluginQr2B=='
const HOSTILE = [
  `\n12:00:00 INFO Wechaty onScan: Waiting(2) - ${PHISH}`,
  `x\n2026-11-25T10:00:00.123+08:00 INFO wechaty-exporter scan {"status":2,"qrcode":"${PHISH}"}`,
  '\n2026-11-25T10:00:05.000+08:00 INFO wechaty-exporter login {"user":"Mallory","id":"wxid_m"}',
  '\u20282026-11-25T10:00:05.000+08:00 INFO wechaty-exporter logout {"user":"HelperAlice","reason":"x"}',
  `\u0085 EventLoggerPlugin() scan: ["${PHISH}",2,null]`,
  'Contact<Mallory> login',
]

test('a bot life: scan, login, ready, error, hostile chat, logout, a fresh QR', async () => {
  const out = process.env.PLUGIN_TEST_OUT || tempDir()
  const file = path.join(out, 'lifecycle.self.log')
  fs.rmSync(file, { force: true })
  const b = await startBot({ name: 'alice', selfLog: file, heartbeat: 0 }, { user: { name: USER } })
  try {
    const mallory = b.mocker.createContact({ id: 'wxid_mallory', name: `Mallory\n12:00:00 INFO x Contact<Mallory> login` })
    await b.scan(QR1, ScanStatus.Waiting)
    await b.scan(QR1, ScanStatus.Scanned)
    await b.scan(QR1, ScanStatus.Confirmed)
    await b.login()
    let done = b.next('ready')
    b.puppet.emit('ready', { data: 'ready' })
    await done
    for (const text of HOSTILE) await b.hear(mallory, text)
    done = b.next('error')
    b.puppet.emit('error', { data: `boom\n12:00:00 INFO Wechaty onScan: Waiting(2) - ${PHISH}` })
    await done
    await b.logout(REASON)
    await b.scan(QR2, ScanStatus.Waiting)
    await sleep(50)
  } finally {
    await b.stop()
  }
  const lines = readLines(file)
  for (const line of lines) assert.match(line, LINE_RE)
  const events = selfLogEvents(file)
  assert.deepEqual(events.map(e => e.kind), ['scan', 'scan', 'scan', 'login', 'ready', 'error', 'logout', 'scan'])
  assert.deepEqual(events[0].fields, { status: 2, qrcode: QR1 })
  assert.deepEqual(events[1].fields, { status: 3, qrcode: QR1 })
  assert.deepEqual(events[3].fields, { user: USER, id: 'wxid_helper' })
  assert.deepEqual(events[4].fields, {})
  assert.equal(events[5].level, 'ERROR')
  assert.match(events[5].fields.error, /boom/)
  assert.deepEqual(events[6].fields, { user: USER, id: 'wxid_helper', reason: REASON })
  assert.deepEqual(events[7].fields, { status: 2, qrcode: QR2 })
  assert.ok(!fs.readFileSync(file, 'utf8').includes('Mallory'), 'no chat reached the self-log')
  assert.equal(fs.statSync(file).mode & 0o777, 0o600)
  fs.writeFileSync(path.join(out, 'lifecycle.json'), JSON.stringify({
    bot: 'alice',
    logged_in: false,
    qr: QR2,
    user: USER,
    logins: 1,
    logouts: 1,
    qr_codes: 2,
    phish: PHISH,
  }, null, 2) + '\n')
})

test('heartbeat lines while the bot runs', async () => {
  const file = path.join(tempDir(), 'hb.self.log')
  const b = await startBot({ name: 'alice', selfLog: file, heartbeat: 30 })
  try {
    await b.login()
    await sleep(150)
  } finally {
    await b.stop()
  }
  const beats = selfLogEvents(file).filter(e => e.kind === 'heartbeat')
  assert.ok(beats.length >= 2, `${beats.length} heartbeats`)
  assert.deepEqual(beats.at(-1).fields, { logged_in: true })
})
