// Two driveable duet members (test/duet-bot.mjs) as separate processes, relayed to each other:
// probes cross, are logged by the receiving member, and the delivery endpoint speaks for its bot.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

import { selfLogEvents, tempDir, until } from './harness.mjs'

const DUET_BOT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'duet-bot.mjs')

async function member (config) {
  const child = spawn(process.execPath, [DUET_BOT], {
    env: { ...process.env, DUET_BOT_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', d => { stderr += d })
  const first = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout })
    lines.once('line', line => resolve(JSON.parse(line)))
    child.once('exit', code => reject(new Error(`duet-bot exited ${code}: ${stderr}`)))
  })
  const call = async (op, body) => {
    const [method, p] = op.split(' ')
    const res = await fetch(first.control + p, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: method === 'GET' ? undefined : JSON.stringify(body ?? {}),
    })
    const json = await res.json()
    if (!res.ok) throw new Error(`${op}: ${res.status} ${JSON.stringify(json)}`)
    return json
  }
  const exited = new Promise(resolve => child.once('exit', code => resolve(code)))
  return { ...first, call, child, exited, stderr: () => stderr }
}

test('two duet-bot processes: probes cross both ways; /send speaks through the right bot', async () => {
  const dir = tempDir()
  const aliceLog = path.join(dir, 'alice.self.log')
  const bobLog = path.join(dir, 'bob.self.log')
  const admin = { id: 'wxid_admin', name: 'Admin', weixin: 'admin_wx', friend: true }
  const alice = await member({
    user: { id: 'wxid_alice', name: 'HelperAlice' },
    contacts: [admin, { id: 'wxid_bob', name: 'HelperBob', friend: true }],
    plugin: { name: 'alice', selfLog: aliceLog, heartbeat: 0, probe: { peer: 'wxid_bob', peerBot: 'bob', interval: '1h' } },
  })
  const bob = await member({
    user: { id: 'wxid_bob', name: 'HelperBob' },
    contacts: [admin, { id: 'wxid_alice', name: 'HelperAlice', friend: true }],
    plugin: {
      name: 'bob',
      selfLog: bobLog,
      heartbeat: 0,
      delivery: { listen: '127.0.0.1:0', noAuth: true },
      probe: { peer: 'HelperAlice', peerBot: 'alice', interval: '1h' },
    },
  })
  try {
    assert.equal(alice.delivery, null)
    assert.equal(typeof bob.delivery.port, 'number')
    await alice.call('POST /relay', { to: 'wxid_bob', control: bob.control })
    await bob.call('POST /relay', { to: 'wxid_alice', control: alice.control })
    await alice.call('POST /scan', { qrcode: 'https://login.weixin.qq.com/l/DuetA==', status: 2 })
    await alice.call('POST /login')
    await bob.call('POST /login')
    await bob.call('POST /ready')
    await bob.call('POST /error', { message: 'boom' })
    await alice.call('POST /probe')
    await bob.call('POST /probe')
    await alice.call('POST /probe')
    await until(() => selfLogEvents(bobLog).filter(e => e.kind === 'probe').length === 2, 5000, 'probes at bob')
    await until(() => selfLogEvents(aliceLog).some(e => e.kind === 'probe'), 5000, 'a probe at alice')

    const res = await fetch(`http://127.0.0.1:${bob.delivery.port}/send`, {
      method: 'POST',
      body: JSON.stringify({ to: 'admin_wx', bot: 'alice', type: 'text', text: 'alice logged out' }),
    })
    assert.equal(res.status, 200)
    const { sent } = await bob.call('GET /sent')
    assert.deepEqual(sent.filter(s => s.to === 'wxid_admin'), [{ to: 'wxid_admin', type: 'text', text: 'alice logged out' }])
    await alice.call('POST /logout', { reason: 'kicked' })
    assert.deepEqual(await alice.call('GET /state'), { logged_in: false })
  } finally {
    await alice.call('POST /stop').catch(() => {})
    await bob.call('POST /stop').catch(() => {})
    assert.equal(await alice.exited, 0, alice.stderr())
    assert.equal(await bob.exited, 0, bob.stderr())
  }
  const at = kind => file => selfLogEvents(file).filter(e => e.kind === kind).map(e => e.fields)
  assert.deepEqual(at('probe_sent')(aliceLog), [{ to: 'bob', seq: 1 }, { to: 'bob', seq: 2 }])
  assert.deepEqual(at('probe')(bobLog), [{ from: 'alice', seq: 1 }, { from: 'alice', seq: 2 }])
  assert.deepEqual(at('probe_sent')(bobLog), [{ to: 'alice', seq: 1 }])
  assert.deepEqual(at('probe')(aliceLog), [{ from: 'bob', seq: 1 }])
  assert.deepEqual(selfLogEvents(aliceLog).map(e => e.kind).filter(k => !k.startsWith('probe')), ['scan', 'login', 'logout'])
  assert.deepEqual(selfLogEvents(bobLog).filter(e => !e.kind.startsWith('probe')).map(e => [e.level, e.kind]),
    [['INFO', 'login'], ['INFO', 'ready'], ['ERROR', 'error']])
})
