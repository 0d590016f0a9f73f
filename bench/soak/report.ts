/**
 * What the soak prints: one line per minute while it runs, and at the end a
 * Markdown table (one row per minute) for the README, the run's answer mix
 * and the verdict.
 */
import { ROUTES } from './contract.js'
import type { Route } from './contract.js'
import type { KeyStats } from './keys.js'
import { percentile } from './metrics.js'
import type { Window } from './metrics.js'
import type { ServerMemory } from './server.js'

export interface Row {
  minute: number
  memory: ServerMemory
  keys: KeyStats
  requests: Record<Route, number>
  p50: number
  p95: number
  p99: number
  nonContract: number
}

export function rowOf (minute: number, window: Window, memory: ServerMemory, keys: KeyStats): Row {
  const { latencies } = window
  return {
    minute,
    memory,
    keys,
    requests: window.requests,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    nonContract: window.nonContract
  }
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
const ms = (value: number) => value.toFixed(1)

/** The line printed at the end of each minute, with a sample of its non-contract answers. */
export function minuteLine (row: Row, window: Window): string {
  const requests = ROUTES.map((r) => `${r} ${row.requests[r]}`).join(' ')
  let line = `minute ${row.minute}: rss ${mb(row.memory.rss)} MB, heap ${mb(row.memory.heapUsed)} MB; ` +
    `redis ${row.keys.keys} keys (${row.keys.immortal} without TTL), ${(row.keys.bytes / 1024).toFixed(0)} KB; ` +
    `${requests}; p50/p95/p99 ${ms(row.p50)}/${ms(row.p95)}/${ms(row.p99)} ms; non-contract ${row.nonContract}`
  for (const [name, { count, message }] of [...window.samples].slice(0, 5)) {
    line += `\n  non-contract: ${name} x${count}${message ? ` (${message})` : ''}`
  }
  for (const key of row.keys.immortalSample) line += `\n  without TTL: ${key}`
  return line
}

export const TABLE_HEADER = '| minute | server RSS MB | heap MB (after GC) | Redis keys | keys without TTL | Redis KB | ' +
  ROUTES.join(' | ') + ' | p50 ms | p95 ms | p99 ms | non-contract |'

export function markdownTable (rows: readonly Row[]): string {
  const lines = [TABLE_HEADER, '|' + '---:|'.repeat(TABLE_HEADER.split('|').length - 2)]
  for (const r of rows) {
    const cells = [r.minute, mb(r.memory.rss), mb(r.memory.heapUsed), r.keys.keys, r.keys.immortal, (r.keys.bytes / 1024).toFixed(0),
      ...ROUTES.map((route) => r.requests[route]), ms(r.p50), ms(r.p95), ms(r.p99), r.nonContract]
    lines.push(`| ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

/** The minute whose memory is the baseline: minute 1 includes start-up and JIT warm-up. */
const BASELINE_MINUTE = 2
/** Growth beyond this factor, from the baseline minute to the last, fails the run. */
export const GROWTH_LIMIT = 1.5

/**
 * Why the run failed; empty when it passed. Memory "grew" when the last
 * minute's RSS or heap after GC exceeds GROWTH_LIMIT times minute 2's; a
 * run of fewer than 3 minutes is not judged on memory.
 */
export function failures (rows: readonly Row[], run: { serverDied: boolean, nonContract: number }): string[] {
  const out: string[] = []
  if (run.serverDied) out.push('the example server exited during the run')
  const { nonContract } = run
  if (nonContract > 0) out.push(`${nonContract} non-contract answers`)
  const immortal = Math.max(0, ...rows.map((r) => r.keys.immortal))
  if (immortal > 0) out.push(`keys without TTL (up to ${immortal} in a minute)`)
  if (rows.length > BASELINE_MINUTE) {
    const base = rows[BASELINE_MINUTE - 1].memory
    const last = rows[rows.length - 1].memory
    for (const [what, from, to] of [['RSS', base.rss, last.rss], ['heap', base.heapUsed, last.heapUsed]] as const) {
      if (to > GROWTH_LIMIT * from) out.push(`${what} grew from ${mb(from)} MB (minute ${BASELINE_MINUTE}) to ${mb(to)} MB (minute ${rows.length}), over ${GROWTH_LIMIT}x`)
    }
  }
  return out
}

/** Every answer of the run by route, for a look at the mix. */
export function answerMix (answers: ReadonlyMap<string, number>): string {
  return [...answers].sort(([a], [b]) => a.localeCompare(b)).map(([name, count]) => `- ${name}: ${count}`).join('\n')
}
