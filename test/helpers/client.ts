import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { ExampleConfig } from '../../example-server/config.js'
import type { LockManagerLike } from '../../client/index.js'
import { exampleApp } from './app.js'

type Test = { teardown: (fn: () => unknown) => void }

export interface RefreshRecord {
  /** A hash of the presented refresh token (tests never keep tokens). */
  presented: string
  status: number
  at: number
}

export interface ListeningApp {
  app: FastifyInstance
  baseUrl: string
  /** Every POST /auth/refresh the server answered, in order. */
  refreshes: RefreshRecord[]
  /** Every /api/me answer's status, in order. */
  apiStatuses: number[]
}

const hash = (value: unknown) => createHash('sha256').update(String(value)).digest('hex').slice(0, 16)

/**
 * The example server in-process, listening on a free port (the client talks
 * real HTTP to it), with generous rate limits unless overridden, counting
 * refreshes server-side. `beforeListen` adds a test's own hooks or routes.
 */
export async function listeningApp (t: Test, overrides: Partial<ExampleConfig> = {}, beforeListen: (app: FastifyInstance) => void = () => {}): Promise<ListeningApp> {
  const app = await exampleApp(t, { refreshRateMax: 10_000, loginRateMax: 10_000, ...overrides })
  beforeListen(app)
  const refreshes: RefreshRecord[] = []
  const apiStatuses: number[] = []
  app.addHook('onResponse', async (request, reply) => {
    if (request.url === '/auth/refresh') {
      refreshes.push({ presented: hash((request.body as { refresh_token?: unknown } | undefined)?.refresh_token), status: reply.statusCode, at: Date.now() })
    } else if (request.url === '/api/me') {
      apiStatuses.push(reply.statusCode)
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, baseUrl: `http://127.0.0.1:${port}`, refreshes, apiStatuses }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `condition` holds (a message crossing a channel, say), for at most `timeoutMs`. */
export async function waitFor (condition: () => boolean | Promise<boolean>, label: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`)
    await sleep(10)
  }
}

/** An in-process stand-in for Web Locks (`navigator.locks`): one holder per name, FIFO. */
export function fakeLocks (): LockManagerLike & { granted: number } {
  const tails = new Map<string, Promise<unknown>>()
  const locks = {
    granted: 0,
    async request<T> (name: string, callback: () => Promise<T>): Promise<T> {
      const previous = tails.get(name) ?? Promise.resolve()
      const run = previous.then(() => { locks.granted++; return callback() })
      tails.set(name, run.catch(() => {}))
      return await run
    }
  }
  return locks
}

/** Signs in straight against the server, as another device would. */
export async function loginElsewhere (baseUrl: string, username: string, extra: Record<string, string> = {}): Promise<{ access_token: string, refresh_token: string }> {
  const res = await fetch(`${baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: `${username}-pass`, ...extra }) })
  if (res.status !== 200) throw new Error(`login ${username} failed: ${res.status}`)
  return await res.json() as { access_token: string, refresh_token: string }
}
