// Chat commands: an admin's text DM goes to the receiver's POST /commands (a local fake here that
// checks the request and answers canned replies); the replies are said back. Strangers, rooms and
// probe-looking text never leave the process.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'

import { PNG_BASE64, fakeServer, sleep, startBot, tempDir } from './harness.mjs'

const TOKEN = 'receiver-token'

describe('commands forwarding', () => {
  let b, receiver, admin, byName, stranger, lookalike, room
  let answer = () => [200, { replies: [] }]
  before(async () => {
    receiver = await fakeServer(req => answer(req))
    const tokenFile = path.join(tempDir(), 'receiver.token')
    fs.writeFileSync(tokenFile, TOKEN)
    b = await startBot({
      name: 'alice',
      commands: { receiverUrl: receiver.url + '/', admins: ['admin_wx', 'Carol'], tokenFile },
    })
    admin = b.mocker.createContact({ id: 'wxid_admin', name: 'Admin', weixin: 'admin_wx', alias: 'boss', friend: true })
    byName = b.mocker.createContact({ id: 'wxid_carol', name: 'Carol', friend: true })
    stranger = b.mocker.createContact({ id: 'wxid_mallory', name: 'Mallory' })
    lookalike = b.mocker.createContact({ id: 'wxid_fake', name: 'Admin' })
    room = b.mocker.createRoom({ id: 'room1@chatroom', topic: 'ops', memberIdList: ['wxid_admin', 'wxid_helper', 'wxid_mallory'] })
    await b.login()
  })
  after(async () => {
    await b.stop()
    await receiver.close()
  })
  beforeEach(() => {
    receiver.requests.length = 0
    b.sent.length = 0
    answer = () => [200, { replies: [] }]
  })

  test('an admin DM is forwarded with the contract shape and the bearer token; replies said back', async () => {
    answer = () => [200, {
      replies: [
        { type: 'text', text: 'bob: logged out since 10:00' },
        { type: 'image', png_base64: PNG_BASE64, filename: 'bob-login-qr.png' },
      ],
    }]
    await b.hear(admin, 'status bob')
    await until(() => b.sent.length === 2)
    assert.equal(receiver.requests.length, 1)
    const req = receiver.requests[0]
    assert.equal(req.method, 'POST')
    assert.equal(req.url, '/commands')
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`)
    assert.match(req.headers['content-type'], /^application\/json/)
    assert.deepEqual(JSON.parse(req.body), {
      from: { id: 'wxid_admin', name: 'Admin', weixin: 'admin_wx', alias: 'boss' },
      text: 'status bob',
      bot: 'alice',
    })
    assert.deepEqual(b.sent[0], { to: 'wxid_admin', type: 'text', text: 'bob: logged out since 10:00' })
    assert.equal(b.sent[1].to, 'wxid_admin')
    assert.equal(b.sent[1].type, 'file')
    assert.equal(b.sent[1].name, 'bob-login-qr.png')
    assert.equal(b.sent[1].base64, PNG_BASE64)
  })

  test('an admin named by display name: forwarded, without weixin or alias keys', async () => {
    await b.hear(byName, 'qr bob')
    await until(() => receiver.requests.length === 1)
    assert.deepEqual(JSON.parse(receiver.requests[0].body), {
      from: { id: 'wxid_carol', name: 'Carol' }, text: 'qr bob', bot: 'alice',
    })
  })

  test('strangers, a look-alike display name, and rooms: dropped, nothing reaches the receiver', async () => {
    await b.hear(stranger, 'status')
    await b.hear(stranger, 'silence bob 1h')
    await b.hear(lookalike, 'qr bob') // named "Admin", but the admin spec is a weixin
    await b.hear(admin, 'status', room) // the admin, in a room
    await sleep(100)
    assert.deepEqual(receiver.requests, [])
    assert.deepEqual(b.sent, [])
  })

  test('probe-looking text from an admin is neither forwarded nor answered', async () => {
    await b.hear(admin, 'wechaty-exporter probe v1 bob 3')
    await sleep(100)
    assert.deepEqual(receiver.requests, [])
    assert.deepEqual(b.sent, [])
  })

  test('the receiver answers an error: a short text says so', async () => {
    answer = () => [503, { error: 'busy' }]
    await b.hear(admin, 'status')
    await until(() => b.sent.length === 1)
    assert.equal(receiver.requests.length, 1)
    assert.match(b.sent[0].text, /receiver answered HTTP 503/)
  })

  test('commands run in arrival order', async () => {
    answer = req => [200, { replies: [{ type: 'text', text: `re: ${JSON.parse(req.body).text}` }] }]
    await b.hear(admin, 'one')
    await b.hear(admin, 'two')
    await b.hear(admin, 'three')
    await until(() => b.sent.length === 3)
    assert.deepEqual(b.sent.map(s => s.text), ['re: one', 're: two', 're: three'])
  })
})

test('receiver unreachable: the admin gets a short text saying so', async () => {
  const gone = await fakeServer(() => [200, {}])
  const url = gone.url
  await gone.close()
  const b = await startBot({ name: 'alice', commands: { receiverUrl: url, admins: ['wxid_admin'], timeout: '5s' } })
  try {
    const admin = b.mocker.createContact({ id: 'wxid_admin', name: 'Admin' })
    await b.login()
    await b.hear(admin, 'status')
    await until(() => b.sent.length === 1)
    assert.equal(b.sent[0].to, 'wxid_admin')
    assert.match(b.sent[0].text, /receiver is unreachable/)
  } finally {
    await b.stop()
  }
})

test('options: commands need a name, a receiver URL and admins', async () => {
  const { WechatyExporter } = await import('../src/index.js')
  assert.throws(() => WechatyExporter({ commands: { receiverUrl: 'http://127.0.0.1:1', admins: ['x'] } }), /name/)
  assert.throws(() => WechatyExporter({ name: 'a', commands: { receiverUrl: 'ftp://x', admins: ['x'] } }), /receiverUrl/)
  assert.throws(() => WechatyExporter({ name: 'a', commands: { receiverUrl: 'http://x', admins: [] } }), /admins/)
  assert.throws(() => WechatyExporter({ name: 'bad name', selfLog: '/dev/null' }), /name/)
})

async function until (check, ms = 5000) {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(10)
  }
}
