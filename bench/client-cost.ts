/**
 * `npm run bench:client-cost`: what one VERIFY call costs the app, in CPU
 * instructions counted by valgrind's callgrind (repeatable on a noisy
 * machine, unlike timings), through the shared ioredis client (auto-pipelined,
 * as the example server runs it) and through the script lane.
 *
 * Each way runs twice, with WARM and WARM + CALLS calls (32 in flight); the
 * difference over CALLS is the cost of one call, start-up and JIT warm-up
 * excluded. Uses the Redis at BENCH_REDIS_URL (default 127.0.0.1:6379), keys
 * under `client-cost:`, which expire. Needs valgrind.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { defineScript } from '../lib/redis.js'
import { ScriptLane, laneSettingsOf } from '../lib/script-lane.js'
import { VERIFY } from '../plugins/token-lifecycle/scripts.js'

const WARM = 2000
const CALLS = 20_000
const IN_FLIGHT = 32
const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

async function child (way: string, count: number): Promise<void> {
  const redis = new Redis(url, { enableAutoPipelining: true })
  const lane = new ScriptLane(laneSettingsOf(redis)!, { debug () {}, warn () {} } as never)
  await lane.firstAttempt
  const call = way === 'lane' ? lane.bind(redis, VERIFY) : defineScript(redis, VERIFY)
  let started = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (started < count) {
      started++
      await call(1, 'client-cost:{u}:s', 'sid', Date.now(), 1, '60000', '1000000', '1000')
    }
  }))
  process.exit(0)
}

function instructions (way: string, count: number): number {
  const run = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null',
    process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), way, String(count)], { encoding: 'utf8' })
  const collected = /Collected : (\d+)/.exec(run.stderr ?? '')
  if (!collected) throw new Error(`callgrind gave no count (is valgrind installed?): ${run.error?.message ?? run.stderr}`)
  return Number(collected[1])
}

if (process.argv[2] === 'lane' || process.argv[2] === 'shared') {
  await child(process.argv[2], Number(process.argv[3]))
} else {
  console.log('| way | instructions per VERIFY call |\n|---|---:|')
  for (const way of ['shared', 'lane']) {
    const perCall = (instructions(way, WARM + CALLS) - instructions(way, WARM)) / CALLS
    console.log(`| ${way === 'lane' ? 'script lane' : 'shared ioredis client, auto-pipelined'} | ${Math.round(perCall / 100) / 10}k |`)
  }
}
