/**
 * The example server in a child process, started as `npm run example` does,
 * plus the memory probe. It runs in a process group of its own: a Ctrl-C at
 * the terminal reaches the soak only, which then stops the load first and
 * the server after.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

export interface ServerMemory { rss: number, heapUsed: number }

export interface ExampleServer {
  baseUrl: string
  /** Settles when the process exits, with its exit code (null when killed by a signal). */
  exited: Promise<number | null>
  memory: () => Promise<ServerMemory>
  stop: () => Promise<void>
}

const root = fileURLToPath(new URL('../..', import.meta.url))
const probe = fileURLToPath(new URL('./memory-probe.ts', import.meta.url))
const START_TIMEOUT_MS = 30_000
const MEMORY_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 10_000

async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}

/** Starts the server with `env` added to ours, and waits until /healthz answers 200. */
export async function startExampleServer (env: Record<string, string>): Promise<ExampleServer> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', probe, 'example-server/server.ts'], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    detached: true
  })
  // The server's log goes to stderr: stdout is the report.
  child.stdout!.pipe(process.stderr)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  // Should the soak die of an error, the server goes with it.
  const killOnExit = () => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  const baseUrl = `http://127.0.0.1:${port}`
  let dead = false
  void exited.then(() => { dead = true })
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (dead) throw new Error(`soak: the example server exited during start-up (code ${await exited})`)
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('soak: the example server did not answer /healthz in time') }
    const up = await fetch(`${baseUrl}/healthz`).then((res) => res.ok, () => false)
    if (up) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  return {
    baseUrl,
    exited,
    async memory () {
      const answer = once(child, 'message') as Promise<[ServerMemory]>
      child.send('soak:memory')
      const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('soak: the server did not report its memory')), MEMORY_TIMEOUT_MS).unref())
      const [memory] = await Promise.race([answer, timeout])
      return memory
    },
    async stop () {
      if (!dead) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
        await exited
        clearTimeout(timer)
      }
      process.removeListener('exit', killOnExit)
    }
  }
}
