import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { ExampleConfig } from '../../example-server/config.js'
import { exampleApp } from './app.js'

/*
 * How the fuzz files run (test/fuzz.*.test.ts). CI runs them with a fixed seed
 * and a small budget, so a run is deterministic and takes seconds; `npm run
 * fuzz` draws a seed and runs many more cases. A failure prints the seed, the
 * run count and the shrunk counterexample: `FUZZ_SEED=<seed> FUZZ_RUNS=<runs>
 * npx tap test/fuzz.<topic>.test.ts` replays it.
 */

/** The seed of CI runs: any fixed number does; this one names the issue. */
const CI_SEED = 13
/** Runs per property in CI: all fuzz files together stay within ~30 s on a loaded 2-core machine. */
const CI_RUNS = 150

function seedFrom (raw: string | undefined): number {
  if (raw === undefined || raw === '') return CI_SEED
  if (raw === 'random') return Math.floor(Math.random() * 2 ** 31)
  const seed = Number(raw)
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer or "random" (got ${JSON.stringify(raw)})`)
  return seed
}

function runsFrom (raw: string | undefined): number {
  if (raw === undefined || raw === '') return CI_RUNS
  const runs = Number(raw)
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`FUZZ_RUNS must be a positive integer (got ${JSON.stringify(raw)})`)
  return runs
}

export const FUZZ_SEED = seedFrom(process.env.FUZZ_SEED)
export const FUZZ_RUNS = runsFrom(process.env.FUZZ_RUNS)

/** Says, once per file, how to replay it: a randomised run is worthless if its seed is lost. */
export function announce (t: Test, file: string): void {
  t.comment(`fuzz: FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS=${FUZZ_RUNS} npx tap ${file}`)
}

/**
 * Checks one property with the file's seed and run count; a failure becomes a
 * failed assertion whose message is fast-check's report (seed, path, shrunk
 * counterexample, the error it threw), so it reaches the tap output.
 * `share` scales the run count for properties whose cases cost more.
 */
export async function holds<Ts extends [unknown, ...unknown[]]> (
  t: Test, name: string, property: fc.IAsyncProperty<Ts>, share = 1
): Promise<void> {
  const numRuns = Math.max(1, Math.round(FUZZ_RUNS * share))
  const details = await fc.check(property, { seed: FUZZ_SEED, numRuns })
  if (details.failed) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    // The replay command in the message itself: every reporter shows that line.
    t.fail(`${name}: ${error} (replay: FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS=${FUZZ_RUNS})`, {
      counterexample: fc.stringify(details.counterexample),
      report: fc.defaultReportMessage(details)
    })
  } else {
    t.pass(`${name} (${details.numRuns} cases)`)
  }
}

/**
 * The example server as the fuzz files drive it: rate limits out of the way
 * (every case would otherwise count towards the same few quotas) and access
 * tokens that outlive a long run (the genuine ones serve every case).
 */
export async function fuzzApp (t: Test, overrides: Partial<ExampleConfig> = {}): Promise<FastifyInstance> {
  return await exampleApp(t, { loginRateMax: 1_000_000, refreshRateMax: 1_000_000, accessTtl: 86_400, ...overrides })
}

/** A breach of the contract found in one answer: thrown so that fast-check shrinks towards it. */
export class ContractBreach extends Error {}

function describe (res: LightMyRequestResponse): string {
  // A 2xx body may hold tokens: never print it.
  return res.statusCode < 300 ? `${res.statusCode}` : `${res.statusCode} ${res.body.slice(0, 300)}`
}

/**
 * What every answer must be, whatever was sent: never a 5xx (the real Redis
 * is up, so not even the contract's 503 AUTH_STORE_UNAVAILABLE may happen:
 * one here would be a false outage), and every 4xx the contract's error JSON
 * with a string `code`. Returns the parsed error body (undefined for a 2xx or 3xx).
 */
export function checkAnswer (res: LightMyRequestResponse): { code: string } | undefined {
  if (res.statusCode >= 500) throw new ContractBreach(`server error: ${describe(res)}`)
  if (res.statusCode < 400) return undefined
  let body: Record<string, unknown>
  try {
    body = JSON.parse(res.body)
  } catch {
    throw new ContractBreach(`error answer that is not JSON: ${describe(res)}`)
  }
  if (typeof body !== 'object' || body === null || typeof body.code !== 'string' || body.code === '' ||
    body.statusCode !== res.statusCode || typeof body.message !== 'string' || typeof body.error !== 'string') {
    throw new ContractBreach(`error answer without the contract's {statusCode, code, error, message}: ${describe(res)}`)
  }
  return body as { code: string }
}

/** An answer that must refuse: anything but a 4xx (after checkAnswer's rules) is a breach. */
export function checkRefused (res: LightMyRequestResponse, what: string): { code: string } {
  const body = checkAnswer(res)
  if (body === undefined) throw new ContractBreach(`${what} was accepted: ${describe(res)}`)
  return body
}
