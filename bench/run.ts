/**
 * `npm run bench [-- --quick] [-- --rounds N --duration S]`
 *
 * Starts its own Redis (never the shared one), one child process per server
 * variant, then measures the variants interleaved, round-robin, over several
 * rounds, and reports medians and ratios from the same run. Writes
 * bench/results.md and prints the same table. See bench/README section in results.md.
 */
import autocannon from 'autocannon'
import { execSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, freemem, totalmem } from 'node:os'
import { createServer, connect } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import type { ServerReady } from './servers/common.js'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const flag = (name: string) => args.includes(`--${name}`)
const value = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const QUICK = flag('quick')
// Many short rounds, back to back, rather than a few long ones: on a shared
// machine the speed drifts over tens of seconds, so the variants a ratio
// compares are measured seconds apart (the latency runs come after, in passes
// of their own), and a median over many rounds shrugs off the rounds a burst
// from elsewhere spoilt.
const ROUNDS = value('rounds', QUICK ? 1 : 12)
const DURATION = value('duration', QUICK ? 1 : 2)
const RATE_DURATION = value('rate-duration', QUICK ? 1 : 2)
const LATENCY_PASSES = value('latency-passes', QUICK ? 1 : 2)
const FIXED_RATE = value('rate', 1000)
const CONNECTIONS = value('connections', 32)
const MEMORY_SESSIONS = value('sessions', QUICK ? 5000 : 100_000)
const POOL = 1000
/** `--only stateless,project`: a subset, for A/B work while optimising (ratios need their baselines in it). */
const ONLY = (() => { const i = args.indexOf('--only'); return i >= 0 ? new Set(args[i + 1].split(',')) : null })()

interface Variant {
  name: string
  label: string
  script: string
  argv: string[]
  method: 'GET' | 'POST'
  path: string
  /** 'token': Bearer from the pool; 'refresh': body {refresh_token}; 'body': the pool entry is the JSON body. */
  credential: 'token' | 'refresh' | 'body'
  /** Each pool entry may be used once: the pool must cover every request of the run, sized from this ceiling (req/s). */
  oneTime?: boolean
  maxRate?: number
  /** Extra environment of the server process. */
  env?: Record<string, string>
}

const variants: Variant[] = [
  { name: 'bare', label: 'bare Fastify route', script: 'bare.ts', argv: [], method: 'GET', path: '/api/me', credential: 'token' },
  { name: 'stateless', label: '@fastify/jwt stateless HS256', script: 'stateless.ts', argv: [], method: 'GET', path: '/api/me', credential: 'token' },
  { name: 'stateless-cache', label: '@fastify/jwt stateless HS256, verify cache on', script: 'stateless.ts', argv: ['cache'], method: 'GET', path: '/api/me', credential: 'token' },
  { name: 'naive', label: 'naive (verify + 3 awaited Redis calls)', script: 'naive.ts', argv: [], method: 'GET', path: '/api/me', credential: 'token' },
  { name: 'project', label: 'this project (session + SSO + claims)', script: 'project.ts', argv: ['me'], method: 'GET', path: '/api/me', credential: 'token' },
  { name: 'project-cache', label: 'this project, local cache on', script: 'project.ts', argv: ['me'], method: 'GET', path: '/api/me', credential: 'token', env: { AUTH_LOCAL_CACHE: 'on' } },
  { name: 'replay', label: 'this project + replay guard', script: 'project.ts', argv: ['replay'], method: 'POST', path: '/api/transfer', credential: 'token', oneTime: true, maxRate: 24_000 },
  { name: 'refresh', label: 'refresh rotation (POST)', script: 'refresh.ts', argv: [], method: 'POST', path: '/auth/refresh', credential: 'refresh', oneTime: true, maxRate: 9_000 },
  { name: 'login', label: 'login (POST)', script: 'project.ts', argv: ['login'], method: 'POST', path: '/auth/login', credential: 'body' }
]

async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close()
  return port
}

const children: ChildProcess[] = []
function cleanup () { for (const c of children) if (c.exitCode === null) c.kill('SIGTERM') }
process.on('exit', cleanup)
process.on('SIGINT', () => { cleanup(); process.exit(130) })

async function startRedis (): Promise<{ port: number, url: string }> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  children.push(child)
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.end(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return { port, url: `redis://127.0.0.1:${port}` }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('bench: redis-server did not start')
}

/**
 * The servers run as compiled JavaScript, as users run the package: through
 * tsx, esbuild's `keepNames` wraps every closure of our TypeScript (and only
 * ours: the dependencies are JavaScript already) in a `__name` call, which
 * profiles put at about 1% of the project's server. One `tsc` of the whole
 * tree into bench/out/build (git-ignored), where Node still finds
 * node_modules and the package's `"type": "module"` by walking up.
 */
const BUILD = join(here, 'out', 'build')
function compile (): void {
  execSync(`npx tsc -p tsconfig.json --outDir ${JSON.stringify(BUILD)} --declaration false --sourceMap false`, { cwd: join(here, '..'), stdio: 'inherit' })
}
/** A bench script's compiled path: `servers/project.ts` -> bench/out/build/bench/servers/project.js. */
const compiled = (script: string) => join(BUILD, 'bench', script.replace(/\.ts$/, '.js'))

interface Running { variant: Variant, child: ChildProcess, ready: ServerReady, cursor: number, exhausted: boolean }

async function startServer (v: Variant, redisUrl: string): Promise<Running> {
  // Warm-up, the timed runs, the fixed-rate runs and the probe, with 10% room.
  const oneTimePool = Math.ceil(((2 + ROUNDS * DURATION) * (v.maxRate ?? 0) + LATENCY_PASSES * RATE_DURATION * FIXED_RATE + 200) * 1.1)
  const child = spawn(process.execPath, [compiled(join('servers', v.script)), ...v.argv], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_REDIS_URL: redisUrl, BENCH_POOL: String(POOL), BENCH_POOL_FOR_ONE_TIME: String(oneTimePool), ...v.env }
  })
  children.push(child)
  const [ready] = await Promise.race([
    once(child, 'message') as Promise<[ServerReady]>,
    once(child, 'exit').then(([code]) => { throw new Error(`bench: server ${v.name} exited with ${code}`) })
  ])
  return { variant: v, child, ready, cursor: 0, exhausted: false }
}

interface Shaped { method: string, headers: Record<string, string>, body?: string }

/** The next request of a variant: its credential taken from the pool, round-robin (or once each). */
function nextRequest (r: Running): Shaped {
  const v = r.variant
  const pool = r.ready.pool
  // Out of one-time credentials: reuse them, so the replays show up as non-2xx and fail the run.
  if (v.oneTime && r.cursor >= pool.length) r.exhausted = true
  const c = pool[r.cursor++ % pool.length]
  if (v.credential === 'token') {
    return v.method === 'POST'
      ? { method: v.method, headers: { authorization: `Bearer ${c}`, 'content-type': 'application/json' }, body: '{"amount":1}' }
      : { method: v.method, headers: { authorization: `Bearer ${c}` } }
  }
  return { method: v.method, headers: { 'content-type': 'application/json' }, body: v.credential === 'refresh' ? JSON.stringify({ refresh_token: c }) : c }
}

function requestFor (r: Running): autocannon.Request {
  return {
    method: r.variant.method,
    path: r.variant.path,
    setupRequest (req) {
      const next = nextRequest(r)
      req.headers = next.headers
      if (next.body !== undefined) req.body = next.body
      return req
    }
  }
}

type Stats = Record<string, number>
async function redisStats (admin: Redis): Promise<Stats> {
  const text = await admin.info('stats', 'commandstats', 'memory', 'cpu') as unknown as string
  const out: Stats = {}
  for (const line of text.split('\r\n')) {
    const m = /^cmdstat_(\w+):calls=(\d+)/.exec(line)
    if (m) out[`cmd.${m[1]}`] = Number(m[2])
    const kv = /^(total_commands_processed|used_memory|used_cpu_sys|used_cpu_user):([\d.]+)/.exec(line)
    if (kv) out[kv[1]] = Number(kv[2])
  }
  return out
}

/**
 * Round trips: sequential Redis calls a request awaits, counted with MONITOR
 * over a sample of requests sent one at a time: a line from a client address is
 * a call the app made; a line from `[0 lua]` runs inside a script. MONITOR is
 * on only during this probe, never during the timed runs.
 */
async function probeRoundTrips (r: Running, redisUrl: string, sample: number): Promise<{ roundTrips: number, inner: number, non2xx: number }> {
  // Let requests still queued from the warm-up drain first: their calls are not the probe's.
  await new Promise((res) => setTimeout(res, 500))
  // redis-cli, not ioredis: a monitoring connection's stream must not meet a client's command queue.
  const { port } = new URL(redisUrl)
  const monitor = spawn('redis-cli', ['-p', port, 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] })
  children.push(monitor)
  let output = ''
  monitor.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  while (!output.startsWith('OK')) await new Promise((res) => setTimeout(res, 20))
  let non2xx = 0
  for (let i = 0; i < sample; i++) {
    const shaped = nextRequest(r)
    const res = await fetch(`http://127.0.0.1:${r.ready.port}${r.variant.path}`, { method: shaped.method, headers: shaped.headers, body: shaped.body })
    await res.arrayBuffer()
    if (res.status < 200 || res.status > 299) non2xx++
  }
  await new Promise((res) => setTimeout(res, 200))
  monitor.kill('SIGTERM')
  let fromClients = 0
  let fromLua = 0
  for (const line of output.split('\n').slice(1)) {
    // The local-cache variant's heartbeat (an empty PUBLISH each second) is not any request's call.
    if (/"publish" "[^"]*:inv" ""$/i.test(line)) continue
    if (/^\d+\.\d+ \[\d+ lua\]/.test(line)) fromLua++
    else if (/^\d+\.\d+ \[\d+ [^\]]+\]/.test(line)) fromClients++
  }
  return { roundTrips: fromClients / sample, inner: fromLua / sample, non2xx }
}

/** CPU time (µs) a process has used so far, from /proc (clock ticks of 10 ms; fine over thousands of requests). */
function processCpuMicros (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

interface Sample { codes: string, serverCpu: number, gcPause: number, redisCpu: number, rps: number, requests: number, non2xx: number, errors: number, commands: number }

/** The server's garbage-collection pauses so far (ms), as it reports them (servers/common.ts). */
async function gcPausedMs (r: Running): Promise<number> {
  const answer = once(r.child, 'message') as Promise<[{ gcMs: number }]>
  r.child.send('gc')
  return (await answer)[0].gcMs
}
interface Latency { codes: string, p50: number, p99: number, failed: number }

/** Which statuses, when some were not 2xx: the first thing to know when a run fails. */
function failedCodes (result: autocannon.Result): string {
  return Object.entries(result.statusCodeStats ?? {})
    .filter(([code]) => !code.startsWith('2')).map(([code, { count }]) => `${code}×${count}`).join(' ')
}

async function measure (r: Running, admin: Redis): Promise<Sample> {
  const before = await redisStats(admin)
  const gcBefore = await gcPausedMs(r)
  const cpuBefore = processCpuMicros(r.child.pid!)
  const result = await autocannon({
    url: `http://127.0.0.1:${r.ready.port}`,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [requestFor(r)]
  })
  const after = await redisStats(admin)
  const serverCpu = processCpuMicros(r.child.pid!) - cpuBefore
  const gcPause = await gcPausedMs(r) - gcBefore
  const redisCpu = ((after.used_cpu_sys + after.used_cpu_user) - (before.used_cpu_sys + before.used_cpu_user)) * 1e6
  // The admin client's own INFO calls are not the app's.
  const commands = (after.total_commands_processed - before.total_commands_processed) - ((after['cmd.info'] ?? 0) - (before['cmd.info'] ?? 0))
  const requests = Math.max(1, result.requests.total)
  return {
    codes: failedCodes(result),
    serverCpu: serverCpu / requests,
    gcPause: gcPause * 1000 / requests,
    redisCpu: redisCpu / requests,
    rps: result.requests.average,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    commands: commands / requests
  }
}

/** Latency at a fixed rate, well below every variant's ceiling. */
async function measureLatency (r: Running): Promise<Latency> {
  const fixed = await autocannon({
    url: `http://127.0.0.1:${r.ready.port}`,
    connections: 10,
    overallRate: FIXED_RATE,
    duration: RATE_DURATION,
    requests: [requestFor(r)]
  })
  return { codes: failedCodes(fixed), p50: fixed.latency.p50, p99: fixed.latency.p99, failed: fixed.non2xx + fixed.errors + fixed.timeouts }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * Bytes of Redis memory per session and per one-time jti key, measured on the
 * real paths: sessions opened through `tokens.openSession` (SSO policy, real
 * fields), one-time keys spent through the per-request VERIFY script.
 */
async function measureMemory (redisUrl: string, count: number): Promise<{ perSession: number, perJti: number }> {
  const child = spawn(process.execPath, [compiled('memory.ts'), String(count)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_REDIS_URL: redisUrl }
  })
  children.push(child)
  const [answer] = await once(child, 'message') as [{ perSession: number, perJti: number }]
  return answer
}

function machine (): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  let mem = `${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM (${(freemem() / 2 ** 30).toFixed(1)} GiB free)`
  try { mem = `${execSync('free -h', { encoding: 'utf8' }).split('\n')[1].trim().split(/\s+/)[1]} RAM (free -h)` } catch {}
  let redis = ''
  try { redis = execSync('redis-server --version', { encoding: 'utf8' }).trim() } catch {}
  return `${cpus().length} cores (nproc ${execSync('nproc', { encoding: 'utf8' }).trim()}), ${cpu}; ${mem}; Node ${process.version}; ${redis}`
}

async function main (): Promise<void> {
  const started = new Date()
  compile()
  const redis = await startRedis()
  const admin = new Redis(redis.url)

  const running: Running[] = []
  const skipped: Array<[Variant, string]> = []
  for (const v of variants) {
    if (ONLY && !ONLY.has(v.name)) continue
    const r = await startServer(v, redis.url)
    if (r.ready.skip) {
      skipped.push([v, r.ready.skip])
      console.log(`SKIP ${v.name}: ${r.ready.skip}`)
      r.child.kill('SIGTERM')
    } else {
      running.push(r)
      console.log(`ready ${v.name} on :${r.ready.port} (pool ${r.ready.pool.length})`)
    }
  }

  const probes = new Map<string, Awaited<ReturnType<typeof probeRoundTrips>>>()
  for (const r of running) {
    // Warm-up: JIT, script cache, connections.
    await autocannon({ url: `http://127.0.0.1:${r.ready.port}`, connections: CONNECTIONS, duration: QUICK ? 1 : 2, requests: [requestFor(r)] })
    probes.set(r.variant.name, await probeRoundTrips(r, redis.url, 200))
  }

  const samples = new Map<string, Sample[]>(running.map((r) => [r.variant.name, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    // Round-robin, each round starting one variant further, so no variant always runs first or last.
    const order = running.map((_, i) => running[(i + round - 1) % running.length])
    for (const r of order) {
      const s = await measure(r, admin)
      samples.get(r.variant.name)!.push(s)
      console.log(`round ${round} ${r.variant.name.padEnd(9)} ${Math.round(s.rps)} req/s, non-2xx ${s.non2xx + s.errors}${s.codes ? ` (${s.codes})` : ''}, ${s.commands.toFixed(2)} cmds/req, server ${s.serverCpu.toFixed(0)} µs (GC ${s.gcPause.toFixed(1)}) + Redis ${s.redisCpu.toFixed(0)} µs CPU/req`)
    }
  }
  const latencies = new Map<string, Latency[]>(running.map((r) => [r.variant.name, []]))
  for (let pass = 1; pass <= LATENCY_PASSES; pass++) {
    for (const r of running) {
      const l = await measureLatency(r)
      latencies.get(r.variant.name)!.push(l)
      console.log(`latency ${pass} ${r.variant.name.padEnd(9)} p50 ${l.p50} ms, p99 ${l.p99} ms @${FIXED_RATE}/s, non-2xx ${l.failed}${l.codes ? ` (${l.codes})` : ''}`)
    }
  }

  for (const r of running) r.child.kill('SIGTERM')
  // A Redis of its own: the runs' keys would otherwise size its hash tables.
  const memoryRedis = await startRedis()
  const memory = flag('no-memory') ? { perSession: NaN, perJti: NaN } : await measureMemory(memoryRedis.url, MEMORY_SESSIONS)

  const med = (name: string, key: Exclude<keyof Sample, 'codes'>) => median(samples.get(name)!.map((s) => s[key]))
  const latency = (name: string, key: 'p50' | 'p99') => median(latencies.get(name)!.map((l) => l[key]))
  /** Median over rounds of the ratio within each round: both sides measured minutes apart at most. */
  const ratio = (name: string, baseline: string) => samples.has(baseline)
    ? median(samples.get(name)!.map((s, i) => s.rps / samples.get(baseline)![i].rps)).toFixed(2)
    : 'n/a'
  const rows: string[] = [
    '| variant | req/s (median) | x stateless | x stateless, cache on | x naive | p50 / p99 ms at ' + FIXED_RATE + ' req/s | non-2xx | server CPU µs / req | of which GC pauses µs / req | Redis CPU µs / req | Redis round trips / req | Redis commands / req (incl. in scripts) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
  ]
  let failed = false
  for (const v of variants) {
    const skip = skipped.find(([s]) => s === v)
    if (!skip && !samples.has(v.name)) continue
    if (skip) { rows.push(`| ${v.label} | skipped: ${skip[1]} | | | | | | | | | | |`); continue }
    const all = samples.get(v.name)!
    const probe = probes.get(v.name)!
    const non2xx = all.reduce((n, s) => n + s.non2xx + s.errors, 0) + latencies.get(v.name)!.reduce((n, l) => n + l.failed, 0) + probe.non2xx
    if (non2xx > 0) failed = true
    if (running.find((x) => x.variant === v)!.exhausted) console.error(`bench: ${v.name} ran out of one-time credentials (raise maxRate)`)
    const rps = med(v.name, 'rps')
    rows.push(`| ${v.label} | ${Math.round(rps)} | ${ratio(v.name, 'stateless')} | ${ratio(v.name, 'stateless-cache')} | ${ratio(v.name, 'naive')} | ${latency(v.name, 'p50')} / ${latency(v.name, 'p99')} | ${non2xx} | ${med(v.name, 'serverCpu').toFixed(0)} | ${med(v.name, 'gcPause').toFixed(1)} | ${med(v.name, 'redisCpu').toFixed(0)} | ${probe.roundTrips.toFixed(2)} | ${med(v.name, 'commands').toFixed(2)} (${(probe.roundTrips + probe.inner).toFixed(2)} by MONITOR) |`)
  }
  const table = rows.join('\n')
  const cmd = `npm run bench${args.length ? ' -- ' + args.join(' ') : ''}`
  const report = `# Benchmark results

- Date: ${started.toISOString()}
- Machine: ${machine()}
- Command: \`${cmd}\`
- Method: one Redis (\`--save "" --appendonly no\`), each server in its own process (compiled with tsc, run as JavaScript), load from autocannon in the runner process; all three share the machine's cores. ${ROUNDS} round(s), back to back, variants interleaved round-robin (each round starts one variant further along): ${DURATION} s at ${CONNECTIONS} connections each (req/s, CPU, commands), so the variants a ratio compares are measured seconds apart; then ${LATENCY_PASSES} pass(es) of ${RATE_DURATION} s per variant at a fixed ${FIXED_RATE} req/s (latency: median over passes). req/s: median over rounds; ratios: median over rounds of the ratio measured within each round (this run only).
- Baselines: "stateless" is @fastify/jwt as its README shows it (\`request.jwtVerify()\`, default options); "verify cache on" adds fast-jwt's verified-token cache (10,000 entries, the size of this project's own cache of verified tokens), the fairest stateless ceiling: its column compares with it.
- Credentials: each read variant rotates over ${POOL} tokens of ${POOL} distinct users (sessions opened through the real login path); one-time variants get one fresh credential per request.
- Round trips: Redis calls the app awaited per request, counted with MONITOR over 200 sequential requests (a call from a client connection counts, the script lane's included; a call inside a Lua script does not, nor the local cache's once-a-second heartbeat PUBLISH). Commands: \`total_commands_processed\` delta over the timed runs / requests (script-internal commands included).
- GC pauses: main-thread time the server spent in garbage collection during the timed runs (its PerformanceObserver 'gc' entries), per request: state a request leaves behind shows here first.

${table}

Redis memory (\`used_memory\` delta over ${MEMORY_SESSIONS} sessions opened through \`tokens.openSession\`, one user each, real fields): **${memory.perSession.toFixed(0)} bytes per session**; one-time jti key spent through the VERIFY script (added on top of those sessions): **${memory.perJti.toFixed(0)} bytes per jti**. Both include Redis's own per-key overhead (dict entry, expiry entry, hash-table buckets, which grow in powers of two, so the per-key figure moves a little with the count).
`
  console.log('\n' + report)
  // Only a full run replaces the published results; --quick and --only are for smoke and A/B work.
  if (!QUICK && !ONLY && !flag('no-memory')) writeFileSync(join(here, 'results.md'), report)
  else console.log('(not written to bench/results.md: partial run)')
  await admin.quit()
  cleanup()
  if (failed) {
    console.error('bench: FAILED, some requests were not 2xx (see the non-2xx column)')
    process.exit(1)
  }
}

main().catch((err) => { console.error(err); cleanup(); process.exit(1) })
