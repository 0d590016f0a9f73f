import { execFile, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import ts from 'typescript'
import { cleanupPrefix } from './helpers/app.js'
import { REDIS_URL, uniquePrefix } from './helpers/env.js'
import { appPackageJson, appTsconfig, clientSource, plainSource, serverSource } from './helpers/packed-app.js'

/**
 * Issue #15's "Done when": the package as npm packs it, installed in a fresh
 * TypeScript app (strict, skipLibCheck off) that has its own
 * @fastify/rate-limit and @fastify/jwt and mounts our routes under /api/auth
 * (test/helpers/packed-app.ts has its sources). Nothing is installed from the
 * network: the app's node_modules holds the unpacked tarball and links to
 * this repository's copies of everything else, which is what npm would have
 * installed (our dependencies, our peers, and the host's own packages).
 */
// About 35 s on a quiet two-core machine, nearly all of it compiler work
// (the package's build and the app's strict compile); beside the other test
// files on those two cores it took past tap's 120 s. Like test/types.test.ts
// (types part of #15), this file asks for 300 s.
t.setTimeout(300_000)

const repo = resolve('.')
const HOST_PACKAGES = ['@fastify/jwt', '@fastify/rate-limit', '@types/node', 'typescript']
type Order = 'without-sessions' | 'host-first' | 'host-last'

/** Children run as users run them: without tap's loaders and coverage (test/helpers/spawn.ts says why). */
function childEnv (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  return env
}

interface RunResult { code: number, output: string }

/** A command to its end, or killed past `timeoutMs` (within the file's own timeout, so the test says which one hung). */
function run (command: string, args: string[], cwd: string, timeoutMs = 200_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      const killed = err !== null && err.killed ? `\n(killed after ${timeoutMs} ms: ${command} ${args.join(' ')})` : ''
      resolve({ code, output: stdout + stderr + killed })
    })
  })
}

interface PackedFile { path: string }

/** `npm run build` into a staging copy of the package, then `npm pack` there: the worktree's dist/ stays as it is. */
async function buildAndPack (t: Test, work: string): Promise<{ tarball: string, files: string[] }> {
  const stage = join(work, 'stage')
  mkdirSync(stage)
  for (const file of ['package.json', 'README.md', 'LICENSE']) copyFileSync(file, join(stage, file))
  const build = await run('npm', ['run', 'build', '--', '--outDir', join(stage, 'dist')], repo)
  t.equal(build.code, 0, 'npm run build', { output: build.output })
  const pack = await run('npm', ['pack', '--json', '--pack-destination', work], stage)
  t.equal(pack.code, 0, 'npm pack', { output: pack.output })
  const [packed] = JSON.parse(pack.output.slice(pack.output.indexOf('['))) as Array<{ filename: string, files: PackedFile[] }>
  return { tarball: join(work, packed.filename), files: packed.files.map((file) => file.path) }
}

/** node_modules as npm would lay it out: the tarball unpacked, the rest linked from this repository. */
async function installInto (t: Test, app: string, tarball: string): Promise<Record<string, Record<string, string> | undefined>> {
  const modules = join(app, 'node_modules')
  mkdirSync(modules, { recursive: true })
  const untar = await run('tar', ['xzf', tarball, '-C', modules], repo)
  t.equal(untar.code, 0, 'tarball unpacked', { output: untar.output })
  renameSync(join(modules, 'package'), join(modules, 'fastify-jwt-sessions'))
  const manifest = JSON.parse(readFileSync(join(modules, 'fastify-jwt-sessions', 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
  const names = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {}), ...HOST_PACKAGES])
  for (const name of names) {
    const target = join(repo, 'node_modules', name)
    t.ok(existsSync(target), `${name} is in this repository's node_modules`)
    mkdirSync(dirname(join(modules, name)), { recursive: true })
    symlinkSync(target, join(modules, name), 'dir')
  }
  return manifest
}

/**
 * The packages the shipped files import by name (JavaScript and declarations),
 * each with a file that imports it. A name npm would not install for the
 * package (neither a dependency nor a peer) resolves here only because
 * something else happened to bring it: a phantom dependency.
 */
function packagesImportedBy (dir: string): Map<string, string> {
  const imported = new Map<string, string>()
  const files = readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(js|d\.ts)$/.test(entry.name))
  for (const entry of files) {
    const file = join(entry.parentPath, entry.name)
    for (const { fileName } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      if (fileName.startsWith('.') || fileName.startsWith('node:') || builtinModules.includes(fileName)) continue
      const name = fileName.split('/').slice(0, fileName.startsWith('@') ? 2 : 1).join('/')
      if (!imported.has(name)) imported.set(name, file.slice(dir.length + 1))
    }
  }
  return imported
}

/**
 * The type errors of src/plain.ts and of our shipped declarations, in a
 * program rooted at src/plain.ts alone, with the app's compiler options
 * (skipLibCheck off). Only those files are checked: other packages'
 * declarations are the main compile's business, and checking them all again
 * would double the test's time.
 */
function declarationErrorsWithout (app: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(join(app, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
  const program = ts.createProgram({ rootNames: [join(app, 'src', 'plain.ts')], options: { ...config!.options, noEmit: true } })
  const ours = program.getSourceFiles().filter((file) => file.fileName.includes('/node_modules/fastify-jwt-sessions/') || file.fileName.endsWith('/src/plain.ts'))
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...ours.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)])
  ]
  return diagnostics.map((d) => {
    const where = d.file === undefined || d.start === undefined ? '' : `${d.file.fileName.slice(app.length + 1)}(${d.file.getLineAndCharacterOfPosition(d.start).line + 1}): `
    return where + ts.flattenDiagnosticMessageText(d.messageText, ' ')
  })
}

interface Server { base: string, output: () => string }

/** Starts the compiled app and waits (bounded) for its address; a boot failure is a failed test, with what it printed. */
async function startApp (t: Test, app: string, order: Order, prefix: string): Promise<Server | null> {
  const child = spawn(process.execPath, [join(app, 'build', 'server.js')], {
    cwd: app,
    env: childEnv({ ORDER: order, REDIS_URL, KEY_PREFIX: prefix }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  let exited = false
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  child.on('exit', () => { exited = true })
  t.teardown(() => { child.kill('SIGKILL') })
  const deadline = Date.now() + 20_000
  let match: RegExpExecArray | null = null
  while ((match = /listening (http:\/\/\S+)/.exec(output)) === null && !exited && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(match, `the app boots (${order})`, { output })
  return match === null ? null : { base: match[1], output: () => output }
}

interface Answer { status: number, body: unknown, limit: string | null, remaining: string | null, retryAfter: boolean }

async function answerOf (response: Response): Promise<Answer> {
  const text = await response.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch {}
  return {
    status: response.status,
    body,
    limit: response.headers.get('x-ratelimit-limit'),
    remaining: response.headers.get('x-ratelimit-remaining'),
    retryAfter: response.headers.has('retry-after')
  }
}

/** The host's own routes, driven the same way in every build of the app: its counts, its error bodies, its JWTs. */
async function hostRouteAnswers (base: string): Promise<Record<string, unknown>> {
  const ping: Answer[] = []
  for (let i = 0; i < 5; i++) ping.push(await answerOf(await fetch(`${base}/app/ping`)))
  const strict: Answer[] = []
  for (let i = 0; i < 4; i++) strict.push(await answerOf(await fetch(`${base}/app/strict`, { method: 'POST' })))
  const issued = await answerOf(await fetch(`${base}/app/token`))
  const token = (issued.body as { token?: string }).token
  const whoami = [
    await answerOf(await fetch(`${base}/app/whoami`, { headers: { authorization: `Bearer ${String(token)}` } })),
    await answerOf(await fetch(`${base}/app/whoami`, { headers: { authorization: 'Bearer not.a.jwt' } })),
    await answerOf(await fetch(`${base}/app/whoami`))
  ]
  const decorators = await answerOf(await fetch(`${base}/app/decorators`))
  return { ping, strict, issued: { ...issued, body: typeof token }, whoami, decorators }
}

// A build, a pack and two compiler runs, CPU-bound beside the suite's other files on
// two cores: more room than tap's 120 s (measured 120 s under load in a full run).
t.setTimeout(300_000)

t.test('a fresh strict TypeScript app with its own rate limit and JWT, using the packed package under /api/auth', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'fjs-packed-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const prefix = uniquePrefix('packed')
  cleanupPrefix(t, prefix)

  const startedAt = Date.now()
  const { tarball, files } = await buildAndPack(t, work)
  const packedAt = Date.now()
  t.test('the tarball holds the build, the README and the LICENSE, nothing else', async (t) => {
    t.ok(files.includes('LICENSE') && files.includes('README.md') && files.includes('package.json'))
    for (const entry of ['dist/plugins/index.js', 'dist/plugins/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts']) t.ok(files.includes(entry), entry)
    t.same(files.filter((file) => !file.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(file)), [])
  })

  const app = join(work, 'app')
  mkdirSync(join(app, 'src'), { recursive: true })
  const manifest = await installInto(t, app, tarball)
  t.test('fastify and the Redis client are the host app\'s: peer dependencies', async (t) => {
    t.match(manifest.peerDependencies, { fastify: String, '@fastify/redis': String, ioredis: String })
    const dependencies = Object.keys(manifest.dependencies ?? {})
    t.notOk(dependencies.includes('fastify'), 'fastify is no dependency')
    t.notOk(dependencies.includes('@fastify/redis'), '@fastify/redis is no dependency')
  })
  t.test('every package the shipped files import is a dependency or a peer', async (t) => {
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})])
    const imported = packagesImportedBy(join(app, 'node_modules', 'fastify-jwt-sessions'))
    t.ok(imported.has('fastify'), 'the scan sees imports')
    t.same([...imported].filter(([name]) => !declared.has(name)).map(([name, file]) => `${name} (imported by ${file})`), [])
  })
  writeFileSync(join(app, 'package.json'), JSON.stringify(appPackageJson, null, 2))
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(appTsconfig, null, 2))
  writeFileSync(join(app, 'src', 'server.ts'), serverSource)
  writeFileSync(join(app, 'src', 'client.ts'), clientSource)
  const entryPoints = Object.keys(manifest.exports ?? {}).filter((subpath) => subpath !== './package.json').map((subpath) => `fastify-jwt-sessions${subpath.slice(1)}`)
  writeFileSync(join(app, 'src', 'plain.ts'), plainSource(entryPoints))

  // The app as its developer compiles it (a child process), and meanwhile, in
  // this one, the entry points in a program without @fastify/jwt.
  const compiling = run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app)
  const plain = declarationErrorsWithout(app)
  const tsc = await compiling
  t.comment(`packed in ${Math.round((packedAt - startedAt) / 1000)} s, compiled in ${Math.round((Date.now() - packedAt) / 1000)} s`)
  // tsc emits even when it reports errors (noEmitOnError is off): a type
  // error fails this assertion and the behaviour is still checked below.
  t.equal(tsc.code, 0, 'the app compiles with strict and skipLibCheck: false', { diagnostics: tsc.output.split('\n').filter(Boolean) })
  t.same(plain, [], 'every entry point compiles in an app without @fastify/jwt, and authenticate\'s reply is typed', { entryPoints })
  if (!t.ok(existsSync(join(app, 'build', 'server.js')) && existsSync(join(app, 'build', 'client.js')), 'tsc emitted the app')) return

  const baseline = await startApp(t, app, 'without-sessions', prefix)
  if (baseline === null) return
  const expected = await hostRouteAnswers(baseline.base)
  t.test('the baseline is what the host configured', async (t) => {
    const { ping, strict, whoami } = expected as { ping: Answer[], strict: Answer[], whoami: Answer[] }
    t.same(ping.map((a) => a.status), [200, 200, 200, 429, 429], 'global limit: 3 a minute')
    t.same(strict.map((a) => a.status), [200, 200, 429, 429], 'the route\'s own limit: 2 a minute')
    t.match(ping[3], { limit: '3', remaining: '0', retryAfter: true, body: { statusCode: 429, error: 'Too Many Requests' } })
    t.same(whoami.map((a) => a.status), [200, 401, 401])
    t.same(whoami[0].body, { name: 'host-user' })
  })

  for (const order of ['host-first', 'host-last'] as const) {
    await t.test(`with our plugins, the host's plugins registered ${order === 'host-first' ? 'before' : 'after'} them`, async (t) => {
      const server = await startApp(t, app, order, prefix)
      if (server === null) return
      t.same(await hostRouteAnswers(server.base), expected, 'the host\'s own routes answer exactly as without our plugins: counts, error bodies, its JWTs, its decorators')

      const client = await run(process.execPath, [join(app, 'build', 'client.js'), server.base], app, 20_000)
      const line = /^result (.*)$/m.exec(client.output)
      if (!t.ok(line, 'the client ran', { output: client.output })) return
      t.match(JSON.parse(line![1]), {
        userId: 'alice',
        meBefore: { status: 200, body: { user_id: 'alice', roles: ['user'] } },
        refreshed: true,
        rotated: true,
        meAfter: { status: 200, body: { user_id: 'alice', roles: ['user'] } },
        afterLogout: 401,
        sessionAfterLogout: null
      }, 'login, refresh and logout through the client')
      for (const path of ['POST /api/auth/login 200', 'POST /api/auth/refresh 200', 'POST /api/auth/logout 204']) {
        t.match(server.output(), `request ${path}`, path)
      }
      for (const path of ['/auth/login', '/auth/refresh']) {
        t.equal((await fetch(`${server.base}${path}`, { method: 'POST' })).status, 404, `nothing at ${path}`)
      }
    })
  }
})
