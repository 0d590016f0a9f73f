/**
 * Counts what the load generator saw, one window (a minute) at a time:
 * requests per route, latencies, and the answers the contract does not
 * allow, grouped so that a burst of one failure prints as one sample.
 */
import { ROUTE_OF, ROUTES, answerName, isContractAnswer } from './contract.js'
import type { Kind, Route } from './contract.js'

export interface Window {
  requests: Record<Route, number>
  /** Milliseconds, sorted. */
  latencies: number[]
  nonContract: number
  /** Distinct non-contract answers of the window: `route answer` -> count and first message. */
  samples: Map<string, { count: number, message: string }>
}

function emptyWindow (): Window {
  return { requests: Object.fromEntries(ROUTES.map((r) => [r, 0])) as Record<Route, number>, latencies: [], nonContract: 0, samples: new Map() }
}

export class Recorder {
  private window = emptyWindow()
  /** Every answer of the run, `route answer` -> count: the mix, printed at the end. */
  readonly answers = new Map<string, number>()
  /** Non-contract answers of the whole run, those after the last window included. */
  nonContractTotal = 0

  /** One HTTP answer; status 0 when none came (`code` then says why). */
  answer (kind: Kind, status: number, code: string, ms: number, message = ''): void {
    const route = ROUTE_OF[kind]
    this.window.requests[route]++
    this.window.latencies.push(ms)
    const name = `${route} ${answerName(status, code)}`
    this.answers.set(name, (this.answers.get(name) ?? 0) + 1)
    if (!isContractAnswer(kind, status, code)) this.nonContract(name, message)
  }

  /** An allowed status whose content breaks the contract (say, another user's id in a 200). */
  violation (kind: Kind, what: string): void {
    this.nonContract(`${ROUTE_OF[kind]} ${what}`, '')
  }

  private nonContract (name: string, message: string): void {
    this.nonContractTotal++
    this.window.nonContract++
    const sample = this.window.samples.get(name)
    if (sample) sample.count++
    else this.window.samples.set(name, { count: 1, message: message.slice(0, 100) })
  }

  /** The window so far, and a fresh one in its place. */
  take (): Window {
    const done = this.window
    this.window = emptyWindow()
    done.latencies.sort((a, b) => a - b)
    return done
  }
}

/** Nearest-rank percentile of sorted values; 0 for none. */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]
}
