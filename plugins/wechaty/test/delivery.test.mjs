// The delivery endpoint: what the receiver's `webhook` messenger POSTs, said through the bot.
// Statuses: 2xx only after the send; 503 (transient for the messenger) when logged out or the
// send failed; 400/401/404/409/413 (permanent) for bad input.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { WechatyExporter } from '../src/index.js'
import { PNG_BASE64, startBot, tempDir } from './harness.mjs'

const TOKEN = 's3cret-token-for-tests'

async function post (port, body, { token = TOKEN, raw = null, path: p = '/send', method = 'POST' } = {}) {
  const headers = { 'Content-Type': 'application/json' }
  if (token !== null) headers.Authorization = `Bearer ${token}`
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    headers,
    body: method === 'GET' ? undefined : (raw ?? JSON.stringify(body)),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers }
}

const record = (fields) => ({ time: '2026-11-25T01:02:03.456Z', bot: 'bob', ...fields })

describe('delivery endpoint', () => {
  let b, port
  before(async () => {
    const dir = tempDir()
    const tokenFile = path.join(dir, 'token')
    fs.writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 })
    b = await startBot({ name: 'alice', delivery: { listen: '127.0.0.1:0', tokenFile, maxBodyBytes: 64 * 1024 } })
    port = (await b.plugin.ready()).delivery.port
    b.mocker.createContact({ id: 'wxid_admin', name: 'Admin', weixin: 'admin_wx', alias: 'boss', friend: true })
    b.mocker.createContact({ id: 'wxid_twin1', name: 'Twin' })
    b.mocker.createContact({ id: 'wxid_twin2', name: 'Twin' })
    b.mocker.createContact({ id: 'wxid_friend', name: 'Pal', friend: true })
    b.mocker.createContact({ id: 'wxid_stranger', name: 'Pal', friend: false })
    await b.login()
  })
  after(async () => { await b.stop() })

  test('text: sent to the contact named by id, weixin, alias or name; 200 after the send', async () => {
    for (const to of ['wxid_admin', 'admin_wx', 'boss', 'Admin']) {
      b.sent.length = 0
      const res = await post(port, record({ to, type: 'text', text: `Bob logged out\nscan the QR (${to})` }))
      assert.equal(res.status, 200, JSON.stringify(res.body))
      assert.deepEqual(res.body, { ok: true, to: 'wxid_admin', type: 'text' })
      assert.deepEqual(b.sent, [{ to: 'wxid_admin', type: 'text', text: `Bob logged out\nscan the QR (${to})` }])
    }
  })

  test('image: a PNG FileBox with the filename', async () => {
    b.sent.length = 0
    const res = await post(port, record({ to: 'boss', type: 'image', png_base64: PNG_BASE64, filename: 'bob-login-qr.png' }))
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(b.sent.length, 1)
    assert.equal(b.sent[0].to, 'wxid_admin')
    assert.equal(b.sent[0].type, 'file')
    assert.equal(b.sent[0].name, 'bob-login-qr.png')
    assert.equal(b.sent[0].base64, PNG_BASE64)
  })

  test('image: a path in the filename is cut to its base name', async () => {
    b.sent.length = 0
    const res = await post(port, record({ to: 'boss', type: 'image', png_base64: PNG_BASE64, filename: '../../etc/qr.png' }))
    assert.equal(res.status, 200)
    assert.equal(b.sent[0].name, 'qr.png')
  })

  test('unknown contact: 404, nothing sent', async () => {
    b.sent.length = 0
    const res = await post(port, record({ to: 'nobody', type: 'text', text: 'hi' }))
    assert.equal(res.status, 404)
    assert.match(res.body.error, /no contact/)
    assert.deepEqual(b.sent, [])
  })

  test('ambiguous contact: 409, nothing sent; a tie goes to the only friend', async () => {
    b.sent.length = 0
    const res = await post(port, record({ to: 'Twin', type: 'text', text: 'hi' }))
    assert.equal(res.status, 409)
    assert.match(res.body.error, /2 contacts match/)
    assert.deepEqual(b.sent, [])
    const pal = await post(port, record({ to: 'Pal', type: 'text', text: 'hi' }))
    assert.equal(pal.status, 200)
    assert.deepEqual(b.sent, [{ to: 'wxid_friend', type: 'text', text: 'hi' }])
  })

  test('bad token or none: 401, nothing sent', async () => {
    b.sent.length = 0
    for (const token of [null, 'wrong', TOKEN + 'x', '']) {
      const res = await post(port, record({ to: 'boss', type: 'text', text: 'hi' }), { token })
      assert.equal(res.status, 401, `token ${token}`)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer')
    }
    assert.deepEqual(b.sent, [])
  })

  test('malformed input: 400, nothing sent', async () => {
    b.sent.length = 0
    const bad = [
      ['{not json', null],
      ['[1, 2]', null],
      [null, { to: 'boss', type: 'voice', text: 'hi' }],
      [null, { to: 'boss', type: 'text' }],
      [null, { to: '', type: 'text', text: 'hi' }],
      [null, { to: 'boss', type: 'text', text: 42 }],
      [null, { to: 'boss', type: 'image', png_base64: 'not base64!' }],
      [null, { to: 'boss', type: 'image', png_base64: Buffer.from('GIF89a-not-a-png').toString('base64') }],
      [null, { to: 'boss', type: 'text', text: 'hi', bot: 7 }],
    ]
    for (const [raw, body] of bad) {
      const res = await post(port, body, { raw })
      assert.equal(res.status, 400, `${raw ?? JSON.stringify(body)} → ${res.status}`)
      assert.ok(res.body.error)
    }
    assert.deepEqual(b.sent, [])
  })

  test('a body over the limit: 413', async () => {
    const res = await post(port, record({ to: 'boss', type: 'text', text: 'x'.repeat(100 * 1024) }))
    assert.equal(res.status, 413)
  })

  test('other paths and methods: 404, 405; /healthz answers', async () => {
    assert.equal((await post(port, {}, { path: '/alerts' })).status, 404)
    b.sent.length = 0
    const alias = await post(port, record({ to: 'boss', type: 'text', text: 'via the prefix' }), { path: '/wechaty-exporter/send' })
    assert.equal(alias.status, 200)
    assert.deepEqual(b.sent, [{ to: 'wxid_admin', type: 'text', text: 'via the prefix' }])
    assert.equal((await post(port, null, { method: 'GET' })).status, 405)
    const health = await post(port, null, { path: '/healthz', method: 'GET', token: null })
    assert.equal(health.status, 200)
    assert.deepEqual(health.body, { ok: true, logged_in: true })
  })

  test('a send that fails: 503 (the messenger retries)', async () => {
    b.failSends(new Error('puppet service unavailable'))
    try {
      const res = await post(port, record({ to: 'boss', type: 'text', text: 'hi' }))
      assert.equal(res.status, 503)
      assert.match(res.body.error, /send failed: puppet service unavailable/)
    } finally {
      b.failSends(null)
    }
  })

  test('logged out: 503, nothing sent; logged in again: 200', async () => {
    await b.logout('kicked')
    b.sent.length = 0
    const res = await post(port, record({ to: 'boss', type: 'text', text: 'hi' }))
    assert.equal(res.status, 503)
    assert.match(res.body.error, /not logged in/)
    assert.deepEqual(b.sent, [])
    await b.login()
    assert.equal((await post(port, record({ to: 'boss', type: 'text', text: 'hi' }))).status, 200)
  })
})

describe('delivery options', () => {
  test('no token: refused unless noAuth, and noAuth only on loopback', async () => {
    const saved = process.env.WECHATY_EXPORTER_PLUGIN_TOKEN
    delete process.env.WECHATY_EXPORTER_PLUGIN_TOKEN
    try {
      assert.throws(() => WechatyExporter({ delivery: { listen: 0 } }), /bearer token is required/)
      assert.throws(() => WechatyExporter({ delivery: { listen: '0.0.0.0:0', noAuth: true } }), /without a token/)
      assert.throws(() => WechatyExporter({ delivery: { listen: '[::]:0', noAuth: true } }), /without a token/)
      WechatyExporter({ delivery: { listen: '127.0.0.1:0', noAuth: true } })
      WechatyExporter({ delivery: { listen: '[::1]:0', noAuth: true } })
    } finally {
      if (saved !== undefined) process.env.WECHATY_EXPORTER_PLUGIN_TOKEN = saved
    }
  })

  test('token from $WECHATY_EXPORTER_PLUGIN_TOKEN; noAuth on loopback takes no token', async () => {
    process.env.WECHATY_EXPORTER_PLUGIN_TOKEN = 'from-env'
    let b
    try {
      b = await startBot({ delivery: { listen: 0 } })
    } finally {
      delete process.env.WECHATY_EXPORTER_PLUGIN_TOKEN
    }
    const open = await startBot({ delivery: { listen: 0, noAuth: true } })
    try {
      b.mocker.createContact({ id: 'wxid_admin', name: 'Admin' })
      open.mocker.createContact({ id: 'wxid_admin', name: 'Admin' })
      await b.login()
      await open.login()
      const port = (await b.plugin.ready()).delivery.port
      const body = record({ to: 'Admin', type: 'text', text: 'hi' })
      assert.equal((await post(port, body, { token: TOKEN })).status, 401)
      assert.equal((await post(port, body, { token: 'from-env' })).status, 200)
      const openPort = (await open.plugin.ready()).delivery.port
      assert.equal((await post(openPort, body, { token: null })).status, 200)
      assert.deepEqual(open.sent, [{ to: 'wxid_admin', type: 'text', text: 'hi' }])
    } finally {
      await b.stop()
      await open.stop()
    }
  })
})
