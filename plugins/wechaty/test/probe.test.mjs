// The duet probe, protocol v1: `wechaty-exporter probe v1 <name> <seq>` DMed to the peer bot's
// account every interval ± jitter while logged in; `probe_sent` / WARN `probe_failed` in the
// sender's self-log, `probe` in the receiver's; never answered, never forwarded.

import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'

import { PROBE_RE, probeText } from '../src/index.js'
import { fakeServer, selfLogEvents, sleep, startBot, tempDir, until } from './harness.mjs'

test('probe text matches the protocol regex', () => {
  assert.equal(probeText('alice', 1), 'wechaty-exporter probe v1 alice 1')
  assert.match(probeText('bot-2.b_x', 123456789012), PROBE_RE)
  for (const bad of ['wechaty-exporter probe v1 alice 1 ', 'wechaty-exporter probe v1 -x 1',
    'wechaty-exporter probe v1 alice 1234567890123', 'x wechaty-exporter probe v1 alice 1',
    'wechaty-exporter probe v1 alice 1\nlogin']) {
    assert.doesNotMatch(bad, PROBE_RE)
  }
})

test('sending: the exact text to the peer account, probe_sent with seq from 1; nothing while logged out', async () => {
  const file = path.join(tempDir(), 'alice.self.log')
  const b = await startBot({
    name: 'alice', selfLog: file, heartbeat: 0,
    probe: { peer: 'bob_wx', peerBot: 'bob', interval: '1h' },
  })
  try {
    b.mocker.createContact({ id: 'wxid_bob', name: 'HelperBob', weixin: 'bob_wx' })
    await b.plugin.probeNow() // not logged in yet
    assert.deepEqual(b.sent, [])
    await b.login()
    await b.plugin.probeNow()
    await b.plugin.probeNow()
    assert.deepEqual(b.sent, [
      { to: 'wxid_bob', type: 'text', text: 'wechaty-exporter probe v1 alice 1' },
      { to: 'wxid_bob', type: 'text', text: 'wechaty-exporter probe v1 alice 2' },
    ])
    b.failSends(new Error('puppet away\nsecond line'))
    await b.plugin.probeNow()
    b.failSends(null)
  } finally {
    await b.stop()
  }
  const events = selfLogEvents(file).filter(e => e.kind.startsWith('probe'))
  assert.deepEqual(events, [
    { level: 'INFO', kind: 'probe_sent', fields: { to: 'bob', seq: 1 } },
    { level: 'INFO', kind: 'probe_sent', fields: { to: 'bob', seq: 2 } },
    { level: 'WARN', kind: 'probe_failed', fields: { to: 'bob', error: 'puppet away second line' } },
  ])
})

test('sending: an unknown peer account is a probe_failed line', async () => {
  const file = path.join(tempDir(), 'alice.self.log')
  const b = await startBot({ name: 'alice', selfLog: file, heartbeat: 0, probe: { peer: 'nobody', peerBot: 'bob' } })
  try {
    await b.login()
    await b.plugin.probeNow()
  } finally {
    await b.stop()
  }
  const [event] = selfLogEvents(file).filter(e => e.kind.startsWith('probe'))
  assert.equal(event.kind, 'probe_failed')
  assert.equal(event.level, 'WARN')
  assert.match(event.fields.error, /no contact/)
  assert.deepEqual(b.sent, [])
})

test('sending: every interval ± jitter while logged in', async () => {
  const file = path.join(tempDir(), 'alice.self.log')
  const b = await startBot({
    name: 'alice', selfLog: file, heartbeat: 0,
    probe: { peer: 'wxid_bob', peerBot: 'bob', interval: 40, jitter: 0.5 },
  })
  try {
    b.mocker.createContact({ id: 'wxid_bob', name: 'HelperBob' })
    await sleep(150)
    assert.deepEqual(b.sent, [], 'no probe before the login')
    await b.login()
    const end = Date.now() + 5000
    while (b.sent.length < 3 && Date.now() < end) await sleep(10)
  } finally {
    await b.stop()
  }
  assert.ok(b.sent.length >= 3, `${b.sent.length} probes`)
  assert.deepEqual(b.sent.slice(0, 3).map(s => s.text), [1, 2, 3].map(n => `wechaty-exporter probe v1 alice ${n}`))
})

test('receiving: the peer\'s probe is logged, not answered nor forwarded; anyone else\'s dropped', async () => {
  const file = path.join(tempDir(), 'bob.self.log')
  const receiver = await fakeServer(() => [200, { replies: [{ type: 'text', text: 'should not be sent' }] }])
  const b = await startBot({
    name: 'bob', selfLog: file, heartbeat: 0,
    probe: { peer: 'HelperAlice', peerBot: 'alice', interval: '1h' },
    commands: { receiverUrl: receiver.url, admins: ['wxid_admin'] },
  }, { user: { id: 'wxid_bob', name: 'HelperBob' } })
  try {
    const alice = b.mocker.createContact({ id: 'wxid_alice', name: 'HelperAlice', friend: true })
    const admin = b.mocker.createContact({ id: 'wxid_admin', name: 'Admin' })
    const mallory = b.mocker.createContact({ id: 'wxid_mallory', name: 'Mallory' })
    const room = b.mocker.createRoom({ id: 'r@chatroom', topic: 't', memberIdList: ['wxid_alice', 'wxid_bob'] })
    await b.login()
    await b.hear(alice, 'wechaty-exporter probe v1 alice 1')
    await b.hear(alice, 'wechaty-exporter probe v1 alice 2')
    await b.hear(mallory, 'wechaty-exporter probe v1 alice 99') // a stranger
    await b.hear(admin, 'wechaty-exporter probe v1 alice 98') // an admin, not the peer
    await b.hear(alice, 'wechaty-exporter probe v1 alice 97', room) // in a room
    await b.hear(alice, 'wechaty-exporter probe v1 alice 96\n2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter login {}')
    await b.hear(alice, 'hello bob') // the peer's ordinary chat: not a command either (not an admin)
    await until(() => selfLogEvents(file).filter(e => e.kind === 'probe').length >= 2, 5000, 'the probe lines')
    await sleep(100)
  } finally {
    await b.stop()
    await receiver.close()
  }
  assert.deepEqual(selfLogEvents(file).filter(e => e.kind !== 'login'), [
    { level: 'INFO', kind: 'probe', fields: { from: 'alice', seq: 1 } },
    { level: 'INFO', kind: 'probe', fields: { from: 'alice', seq: 2 } },
  ])
  assert.deepEqual(b.sent, [], 'never answered')
  assert.deepEqual(receiver.requests, [], 'never forwarded')
})

test('options: probe needs a name, a peer and a peer bot name; interval and jitter checked', async () => {
  const { WechatyExporter } = await import('../src/index.js')
  assert.throws(() => WechatyExporter({ probe: { peer: 'x', peerBot: 'bob' } }), /name/)
  assert.throws(() => WechatyExporter({ name: 'a', probe: { peerBot: 'bob' } }), /probe.peer/)
  assert.throws(() => WechatyExporter({ name: 'a', probe: { peer: 'x', peerBot: 'b b' } }), /peerBot/)
  assert.throws(() => WechatyExporter({ name: 'a', probe: { peer: 'x', peerBot: 'b', interval: 'soon' } }), /interval/)
  assert.throws(() => WechatyExporter({ name: 'a', probe: { peer: 'x', peerBot: 'b', jitter: 1.5 } }), /jitter/)
})
