// Types of wechaty-exporter-plugin (hand-written; the code is ESM JavaScript in src/).
import type { WechatyInterface, WechatyPlugin } from 'wechaty'

/** A duration: milliseconds, or a string like '500ms', '30s', '10m', '1h'. */
export type Duration = number | string

/**
 * A contact spec: matched exactly against a contact's id, else weixin, else alias, else display
 * name; a tie at the deciding level goes to the only friend among the matches, any other tie is
 * ambiguous (refused).
 */
export type ContactSpec = string

export interface DeliveryOptions {
  /** 'host:port', '[v6]:port', ':port' or a port number; host defaults to 127.0.0.1. Default 0 (any free port). */
  listen?: string | number
  /** A file holding the bearer token the receiver's webhook messenger sends. */
  tokenFile?: string
  /** The environment variable read when there is no tokenFile. Default WECHATY_EXPORTER_PLUGIN_TOKEN. */
  tokenEnv?: string
  /** No token at all: allowed on a loopback address only. */
  noAuth?: boolean
  /** Largest request body accepted. Default 4 MiB. */
  maxBodyBytes?: number
}

export interface CommandsOptions {
  /** The receiver's base URL; messages go to `<receiverUrl>/commands`. */
  receiverUrl: string
  /** Who may send commands (DMs only). Anyone else's messages never leave the process. */
  admins: ContactSpec[]
  /** A file holding the receiver's bearer token (the one `/alerts` takes). */
  tokenFile?: string
  /** The environment variable read when there is no tokenFile. Default WECHATY_EXPORTER_RECEIVER_TOKEN. */
  tokenEnv?: string
  /** How long to wait for the receiver's answer (a `restart` command holds it). Default 120 s. */
  timeout?: Duration
}

export interface ProbeOptions {
  /** The peer bot's account, as this bot sees it. */
  peer: ContactSpec
  /** The peer bot's name (the name it uses in its own probes). */
  peerBot: string
  /** How often to probe. Default '10m'. */
  interval?: Duration
  /** The fraction by which each interval varies, in [0, 1). Default 0.1. */
  jitter?: number
}

export interface WechatyExporterOptions {
  /** This bot's name, as the exporter and receiver know it ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}). Required with commands or probe. */
  name?: string
  /** The self-log file: scan, login, logout, ready, error, heartbeat and probe lines. */
  selfLog?: string
  /** The self-log file's mode. Default 0o600. */
  selfLogMode?: number
  /** A heartbeat line every so often (0: none). Default '10m'. */
  heartbeat?: Duration
  /** Timeout of each send through the puppet. Default 30 s. */
  sendTimeout?: Duration
  /** The delivery endpoint (POST /send) for the receiver's webhook messenger. Off unless given. */
  delivery?: DeliveryOptions
  /** Chat commands, forwarded to the receiver's POST /commands. Off unless given. */
  commands?: CommandsOptions
  /** The duet probe. Off unless given. */
  probe?: ProbeOptions
  /** Where the plugin's own diagnostics go. Default console. */
  logger?: { info (message: string): void, warn (message: string): void }
}

export interface WechatyExporterPlugin extends WechatyPlugin {
  (bot: WechatyInterface): () => void
  /** Resolves once the delivery endpoint listens (with its address), at once without one. */
  ready (): Promise<{ delivery?: { host: string, port: number } }>
  /** Stops the endpoint and timers, and closes the self-log. */
  close (): Promise<void>
  /** One probe now (if logged in), its self-log line written when it resolves. */
  probeNow (): Promise<void>
}

export function WechatyExporter (options?: WechatyExporterOptions): WechatyExporterPlugin
export default WechatyExporter

export const BOT_NAME_RE: RegExp
export const PROBE_RE: RegExp
export const DELIVERY_TOKEN_ENV: 'WECHATY_EXPORTER_PLUGIN_TOKEN'
export const RECEIVER_TOKEN_ENV: 'WECHATY_EXPORTER_RECEIVER_TOKEN'
export function probeText (name: string, seq: number): string
export function parseDuration (value: Duration, what: string): number
export function formatSelfLog (kind: string, fields: object, at?: Date, level?: string): string

export class SelfLog {
  constructor (file: string, options?: { mode?: number, onError?: (error: Error) => void })
  readonly path: string
  open (): void
  write (kind: string, fields: object, options?: { level?: string, at?: Date }): void
  close (): void
}

export class ContactNotFound extends Error {}
export class ContactAmbiguous extends Error {}
export function resolveContact (bot: WechatyInterface, spec: ContactSpec): Promise<{
  id: string, name: string, weixin: string, alias: string, friend: boolean, contact: unknown
}>
