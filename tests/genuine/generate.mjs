// Writes a corpus of genuine bot logs: bot.mjs (real wechaty, wechaty-puppet-mock and
// wechaty-plugin-contrib) run directly and under the real pm2, each run logging to its own files.
//
//   node generate.mjs <out-dir> [--pm2-home <dir>]
//
// <out-dir>/manifest.json lists every log: {name, paths, record, style, scenario, wrapper}.
// `record` is the JSON file bot.mjs wrote: what it drove, and the state that implies.
// Runs:
//   direct     every style × scenario, stdout and stderr to one file (`node bot.mjs ... >f 2>&1`)
//   pm2        `pm2 start` with no log flags, `--time`, `--log-type json`, and both: pm2's
//              <name>-out.log and <name>-error.log (in <out-dir>/logs). PM2_HOME is --pm2-home
//              (its caller can `pm2 kill` there if this script is killed), else a fresh
//              directory under the system's temporary directory (short socket paths).
//   pm2 logs   `pm2 logs <name> --lines 0` and `--raw`, streamed to a file while the bot runs
// pm2 is killed at the end, whatever happens.

import { spawn, spawnSync } from 'node:child_process'
import {
  closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
const PM2 = join(HERE, 'node_modules', 'pm2', 'bin', 'pm2')
const BOT = join(HERE, 'bot.mjs')
const DEADLINE_MS = 150_000
const PARALLEL = 4

const STYLES = [
  'starter', 'eventlogger', 'eventlogger-only', 'eventlogger-1-11', 'ding-dong', 'verbose', 'silly',
]
const SCENARIOS = ['chat', 'forged']
const LEVEL = { verbose: 'verbose', silly: 'silly' }
const PM2_MODES = {
  plain: [],
  time: ['--time'],
  json: ['--log-type', 'json'],
  'time-json': ['--time', '--log-type', 'json'],
}
// [style, scenario, mode, pm2 logs captures: false for the plain stream, true for --raw]
const PM2_APPS = [
  ['starter', 'chat', 'plain', [false, true]],
  ['starter', 'chat', 'time', [false]],
  ['starter', 'chat', 'json', [false]],
  ['starter', 'chat', 'time-json', []],
  ['eventlogger', 'chat', 'plain', [false, true]],
  ['eventlogger', 'chat', 'time', [false]],
  ['eventlogger', 'chat', 'json', [false]],
  ['eventlogger', 'chat', 'time-json', []],
  ['eventlogger', 'forged', 'time-json', []],
  ['eventlogger-1-11', 'chat', 'plain', [false]],
]

const [outArg, option, pm2HomeArg] = process.argv.slice(2)
if (!outArg || (option !== undefined && (option !== '--pm2-home' || !pm2HomeArg))) {
  console.error('usage: node generate.mjs <out-dir> [--pm2-home <dir>]')
  process.exit(2)
}
const out = resolve(outArg)
const LOGS = join(out, 'logs')
const RECORDS = join(out, 'records')
mkdirSync(LOGS, { recursive: true })
mkdirSync(RECORDS, { recursive: true })
const manifest = []
const started = Date.now()

function fail (message) {
  throw new Error(message)
}

function remaining () {
  return Math.max(1000, DEADLINE_MS - (Date.now() - started))
}

// A child whose output goes to `file` (stdout and stderr both, in the order written).
function runTo (file, args, env) {
  return new Promise((resolvePromise, reject) => {
    const fd = openSync(file, 'w')
    const child = spawn(process.execPath, args, { cwd: HERE, env, stdio: ['ignore', fd, fd] })
    closeSync(fd)
    const timer = setTimeout(() => child.kill('SIGKILL'), remaining())
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolvePromise()
      else reject(new Error(`${args.join(' ')} exited ${code ?? signal}; see ${file}`))
    })
  })
}

async function inBatches (jobs, size) {
  for (let i = 0; i < jobs.length; i += size) {
    await Promise.all(jobs.slice(i, i + size).map(job => job()))
  }
}

async function direct () {
  const jobs = []
  for (const style of STYLES) {
    for (const scenario of SCENARIOS) {
      const name = `direct-${style}-${scenario}`
      const log = join(LOGS, `${name}.log`)
      const record = join(RECORDS, `${name}.json`)
      const env = { ...process.env, GENUINE_RUN: name }
      delete env.WECHATY_LOG
      delete env.GENUINE_GO
      if (LEVEL[style]) env.WECHATY_LOG = LEVEL[style]
      jobs.push(async () => {
        await runTo(log, [BOT, style, scenario, record], env)
        manifest.push({ name, paths: [log], record, style, scenario, wrapper: 'direct' })
      })
    }
  }
  await inBatches(jobs, PARALLEL)
}

function pm2 (env, ...args) {
  const done = spawnSync(process.execPath, [PM2, ...args], {
    cwd: HERE,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (done.status !== 0) {
    fail(`pm2 ${args.join(' ')} failed (${done.status ?? done.signal}): ${done.stderr}${done.stdout}`)
  }
  return done.stdout
}

function pm2Async (env, ...args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [PM2, ...args], { cwd: HERE, env, stdio: 'ignore' })
    child.on('error', reject)
    child.on('exit', code => (code === 0 ? resolvePromise() : reject(new Error(`pm2 ${args.join(' ')}: ${code}`))))
  })
}

const sleep = ms => new Promise(resolvePromise => setTimeout(resolvePromise, ms))

async function underPm2 () {
  const home = pm2HomeArg ? resolve(pm2HomeArg) : mkdtempSync(join(tmpdir(), 'pm2-'))
  mkdirSync(home, { recursive: true })
  const go = join(out, 'pm2-go')
  const env = { ...process.env, PM2_HOME: home, GENUINE_GO: go }
  delete env.WECHATY_LOG
  const captures = []
  try {
    pm2(env, 'ping') // starts the daemon
    const apps = PM2_APPS.map(([style, scenario, mode, captures]) => ({
      name: `pm2-${style}-${scenario}-${mode}`, style, scenario, mode, flags: PM2_MODES[mode], captures,
    }))
    // Subscribe the captures first; the bots print a waiting line until every capture has one.
    for (const app of apps) {
      for (const raw of app.captures) {
        const name = `pm2-logs${raw ? '-raw' : ''}-${app.style}-${app.scenario}-${app.mode}`
        const file = join(LOGS, `${name}.log`)
        const fd = openSync(file, 'w')
        const args = [PM2, 'logs', app.name, '--lines', '0', ...(raw ? ['--raw'] : [])]
        const child = spawn(process.execPath, args, { cwd: HERE, env, stdio: ['ignore', fd, fd] })
        closeSync(fd)
        captures.push({ child, file, app, name, raw })
      }
    }
    await Promise.all(
      apps.map(app =>
        pm2Async(
          { ...env, GENUINE_RUN: app.name },
          'start', BOT, '--name', app.name, '--no-autorestart', ...app.flags,
          '--output', join(LOGS, `${app.name}-out.log`), '--error', join(LOGS, `${app.name}-error.log`),
          '--', app.style, app.scenario, join(RECORDS, `${app.name}.json`),
        ),
      ),
    )
    while (!captures.every(c => readFileSync(c.file, 'utf8').includes('waiting for the log capture'))) {
      if (remaining() <= 1000) fail('pm2 logs never showed the bots\' output')
      await sleep(100)
    }
    writeFileSync(go, '')
    // Wait for every bot to finish: it writes its record, then exits.
    const records = apps.map(app => join(RECORDS, `${app.name}.json`))
    while (!records.every(existsSync)) {
      if (remaining() <= 1000) fail(`pm2 apps wrote no record: ${records.filter(r => !existsSync(r)).join(', ')}`)
      await sleep(100)
    }
    for (;;) {
      const list = JSON.parse(pm2(env, 'jlist'))
      const running = list.filter(p => ['online', 'launching', 'stopping'].includes(p.pm2_env.status))
      if (!running.length) break
      if (remaining() <= 1000) fail(`pm2 apps still running: ${running.map(p => p.name).join(', ')}`)
      await sleep(300)
    }
    await sleep(300) // the last lines reach pm2 logs through pm2's bus
    for (const app of apps) {
      const record = join(RECORDS, `${app.name}.json`)
      const paths = [join(LOGS, `${app.name}-out.log`), join(LOGS, `${app.name}-error.log`)]
      manifest.push({ name: app.name, paths, record, style: app.style, scenario: app.scenario, wrapper: `pm2-${app.mode}` })
    }
    for (const c of captures) {
      const record = join(RECORDS, `${c.app.name}.json`)
      const wrapper = `pm2-logs${c.raw ? '-raw' : ''}-${c.app.mode}`
      manifest.push({ name: c.name, paths: [c.file], record, style: c.app.style, scenario: c.app.scenario, wrapper })
    }
  } finally {
    for (const c of captures) c.child.kill('SIGTERM')
    spawnSync(process.execPath, [PM2, 'kill'], { cwd: HERE, env, stdio: 'ignore', timeout: 30_000 })
    if (!pm2HomeArg) rmSync(home, { recursive: true, force: true })
  }
}

try {
  await direct()
  const directDone = Date.now()
  await underPm2()
  manifest.sort((a, b) => a.name.localeCompare(b.name))
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  const seconds = (from, to) => ((to - from) / 1000).toFixed(1)
  console.info(
    `${manifest.length} logs in ${LOGS} (direct ${seconds(started, directDone)} s, ` +
      `pm2 ${seconds(directDone, Date.now())} s)`,
  )
} catch (e) {
  console.error(`generate.mjs: ${e.message}`)
  process.exit(1)
}
