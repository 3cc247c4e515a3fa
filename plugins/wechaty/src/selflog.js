// The self-log: one line per event, in the format wechaty-exporter documents and parses
// (wechaty_exporter.logs.dialects.selflog):
//
//   <RFC 3339 local time with ms and offset> <LEVEL> wechaty-exporter <kind> <compact JSON>
//
// JSON escapes newlines, so no name, reason, QR or chat text can start a line of its own; the
// line separators U+0085, U+2028, U+2029 and lone surrogates are escaped as well.

import fs from 'node:fs'
import path from 'node:path'

export const SELF_LOG_NAME = 'wechaty-exporter'
const KIND_RE = /^[a-z][a-z0-9_]*$/
const LEVEL_RE = /^[A-Z]+$/
// JSON.stringify already escapes lone surrogates (well-formed JSON.stringify, ES2019).
const UNSAFE_RE = /[\u0085\u2028\u2029\ud800-\udfff]/gu

const pad = (n, width = 2) => String(n).padStart(width, '0')

/**
 * RFC 3339 local time with milliseconds and the UTC offset, like Python's
 * `datetime.astimezone().isoformat(timespec="milliseconds")`.
 * @param {Date} date
 */
export function localStamp (date) {
  const offset = -date.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
}

/** Compact JSON with line separators and lone surrogates escaped. */
export function safeJson (fields) {
  const body = JSON.stringify(fields) ?? 'null'
  // With the `u` flag a surrogate pair is one code point outside the class: only lone
  // surrogates match (JSON.stringify escapes those already; this is the belt to its braces).
  return body.replace(UNSAFE_RE, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * One self-log line, without the newline.
 * @param {string} kind
 * @param {object} fields
 * @param {Date} [at]
 * @param {string} [level]
 */
export function formatSelfLog (kind, fields, at = new Date(), level = 'INFO') {
  if (!KIND_RE.test(kind)) throw new Error(`self-log kind must match [a-z][a-z0-9_]*: ${kind}`)
  if (!LEVEL_RE.test(level)) throw new Error(`self-log level must match [A-Z]+: ${level}`)
  return `${localStamp(at)} ${level} ${SELF_LOG_NAME} ${kind} ${safeJson(fields)}`
}

/**
 * Appends self-log lines to a file, opened with O_APPEND|O_CREAT|O_NOFOLLOW and the given mode
 * (a symbolic link, a non-regular file, another user's file or a hard-linked one is refused),
 * reopened when rotated away. Writes are synchronous, so lines keep the order of the events.
 */
export class SelfLog {
  /**
   * @param {string} file
   * @param {{mode?: number, onError?: (e: Error) => void}} [options]
   */
  constructor (file, options = {}) {
    this.path = path.resolve(file)
    this.mode = options.mode ?? 0o600
    this.onError = options.onError ?? (e => console.error(`wechaty-exporter: cannot write the self-log ${this.path}: ${e.message}`))
    this.fd = null
    this.ident = null
  }

  /** Open now, so an unusable path fails at start. Throws. */
  open () {
    this._file()
  }

  /**
   * @param {string} kind
   * @param {object} fields
   * @param {{level?: string, at?: Date}} [options]
   */
  write (kind, fields, options = {}) {
    const line = formatSelfLog(kind, fields, options.at ?? new Date(), options.level ?? 'INFO') + '\n'
    try {
      const fd = this._file()
      const data = Buffer.from(line, 'utf8')
      let off = 0
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off)
    } catch (e) {
      this.onError(e)
    }
  }

  close () {
    if (this.fd !== null) {
      try { fs.closeSync(this.fd) } catch {}
      this.fd = null
      this.ident = null
    }
  }

  _file () {
    let ident = null
    try {
      const st = fs.lstatSync(this.path)
      ident = `${st.dev}:${st.ino}`
    } catch (e) {
      if (e.code !== 'ENOENT') throw e
    }
    if (this.fd !== null && ident !== this.ident) this.close() // rotated away or deleted
    if (this.fd === null) {
      fs.mkdirSync(path.dirname(this.path), { recursive: true })
      const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants
      let fd
      try {
        fd = fs.openSync(this.path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, this.mode)
      } catch (e) {
        if (e.code === 'ELOOP') throw new Error(`${this.path} is a symbolic link: refused`)
        throw e
      }
      try {
        const st = fs.fstatSync(fd)
        if (!st.isFile()) throw new Error(`${this.path} is not a regular file`)
        if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
          throw new Error(`${this.path} belongs to another user`)
        }
        if (st.nlink > 1) throw new Error(`${this.path} has other hard links`)
        if ((st.mode & 0o777 & ~this.mode) !== 0) fs.fchmodSync(fd, st.mode & 0o777 & this.mode)
        this.ident = `${st.dev}:${st.ino}`
      } catch (e) {
        fs.closeSync(fd)
        throw e
      }
      this.fd = fd
    }
    return this.fd
  }
}
