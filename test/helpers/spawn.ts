import { spawn } from 'node:child_process'
import type { ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'

type Test = { teardown: (fn: () => unknown) => void }

export interface SpawnedServer {
  child: ChildProcessByStdio<null, Readable, Readable>
  /** Everything the process printed so far (stdout and stderr). */
  output (): string
}

/**
 * Runs a TypeScript entry point as `node --import tsx <entry>` and waits until
 * it prints `readyText`. The shell drops tap's NODE_OPTIONS first: tap would
 * track the child's coverage, and tsx-compiled code reports V8 ranges that
 * corrupt the merged report of every other file. Killed at teardown.
 */
export async function spawnTsServer (t: Test, entry: string, env: NodeJS.ProcessEnv, readyText: string): Promise<SpawnedServer> {
  const child = spawn('sh', ['-c', `unset NODE_OPTIONS NODE_V8_COVERAGE; exec node --import tsx ${entry}`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const deadline = Date.now() + 20_000
  while (!output.includes(readyText) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  return { child, output: () => output }
}
