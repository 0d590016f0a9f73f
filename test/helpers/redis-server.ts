import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { infoField } from './replication.js'

const exec = promisify(execFile)
type Test = { teardown: (fn: () => unknown) => void }

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function waitForPing (port: number, extra: (r: Redis) => Promise<boolean> = async () => true, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    client.on('error', () => {})
    try {
      await client.connect()
      if ((await client.ping()) === 'PONG' && await extra(client)) return
    } catch {
      // not up yet
    } finally {
      client.disconnect()
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  throw new Error(`redis-server on port ${port} did not come up`)
}

export interface RedisProcess {
  port: number
  url: string
  /** The running redis-server (a new one after each restart). */
  readonly process: ChildProcess
  /** SIGKILL: the server is gone, connections drop. */
  kill (): void
  /**
   * Kills the server if it still runs and starts a new, empty one on the same
   * port: resolves as soon as it answers PING (polled every 10 ms).
   */
  restart (): Promise<void>
  /** SIGSTOP / SIGCONT: the server is there but does not answer (a stalled Redis). */
  pause (): void
  resume (): void
}

/** A private redis-server (no persistence) that a test may kill or stall; stopped at teardown. */
export async function startRedisServer (t: Test, args: string[] = []): Promise<RedisProcess> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fjs-redis-'))
  const start = () => spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args], { stdio: 'ignore' })
  let child = start()
  t.teardown(() => {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  await waitForPing(port)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get process () { return child },
    kill: () => { child.kill('SIGKILL') },
    pause: () => { child.kill('SIGSTOP') },
    resume: () => { child.kill('SIGCONT') },
    async restart () {
      // The port is free again once the old process is gone.
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit')
        child.kill('SIGKILL')
        await exited
      }
      child = start()
      await waitForPing(port, undefined, 10)
    }
  }
}

/** A 3-master Redis Cluster from plain redis-server processes on free ports. */
export async function startRedisCluster (t: Test): Promise<Array<{ host: string, port: number }>> {
  const nodes = []
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedisServer(t, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000']))
  }
  await exec('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  for (const node of nodes) {
    await waitForPing(node.port, async (client) => /cluster_state:ok/.test(await client.cluster('INFO') as string))
  }
  return nodes.map((n) => ({ host: '127.0.0.1', port: n.port }))
}

export interface ReplicatedClusterNode extends RedisProcess {
  /** The node's cluster id (CLUSTER MYID). */
  id: string
  /** The id of the master it replicated when the cluster formed, or null for a master. */
  replicaOf: string | null
}

export interface ReplicatedCluster {
  /** Every node's address: what a Cluster client is given. */
  nodes: Array<{ host: string, port: number }>
  masters: ReplicatedClusterNode[]
  replicas: ReplicatedClusterNode[]
}

/**
 * A Redis Cluster of 3 masters, each with one replica, from plain
 * redis-server processes on free ports; resolves once every node sees all six
 * (three of them replicas) and the cluster ok, and every replica holds its
 * master's data.
 * `nodeTimeoutMs` (cluster-node-timeout) is short so that a killed master is
 * failed over in about two of it.
 */
export async function startReplicatedRedisCluster (t: Test, nodeTimeoutMs = 1000): Promise<ReplicatedCluster> {
  const servers = []
  for (let i = 0; i < 6; i++) {
    servers.push(await startRedisServer(t, [
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', String(nodeTimeoutMs),
      // Diskless initial sync without the default 5 s wait for more replicas to join.
      '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'
    ]))
  }
  // redis-cli makes the first three masters and gives each one of the others.
  await exec('redis-cli', ['--cluster', 'create', ...servers.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'])
  const nodes: ReplicatedClusterNode[] = []
  for (const server of servers) {
    let id = ''
    let replicaOf: string | null = null
    await waitForPing(server.port, async (client) => {
      const info = await client.cluster('INFO') as string
      if (infoField(info, 'cluster_state') !== 'ok' || infoField(info, 'cluster_known_nodes') !== '6') return false
      // Each node learns the others' roles by gossip: every node must know the three replicas.
      const view = (await client.cluster('NODES') as string).trim().split('\n').map((line) => line.split(' '))
      if (view.filter((node) => node[2]!.split(',').includes('slave')).length !== 3) return false
      id = await client.cluster('MYID') as string
      const me = view.find((node) => node[0] === id)!
      replicaOf = me[3] === '-' ? null : me[3]
      if (replicaOf === null) return true
      const replication = await client.info('replication')
      return infoField(replication, 'master_link_status') === 'up' && infoField(replication, 'master_sync_in_progress') === '0'
    })
    nodes.push(Object.assign(server, { id, replicaOf }))
  }
  return {
    nodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    masters: nodes.filter((n) => n.replicaOf === null),
    replicas: nodes.filter((n) => n.replicaOf !== null)
  }
}
