import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { infoField, sentinelMasterPort } from './replication.js'

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

export interface TlsFiles {
  /** The CA's certificate: the file REDIS_CA_FILE names. */
  caFile: string
  certFile: string
  keyFile: string
}

/**
 * A CA of the test's own and a certificate it signed for 127.0.0.1 and
 * localhost, made with openssl in a temporary folder removed at teardown.
 * P-256 keys: quicker to make than RSA on a loaded machine.
 */
export async function makeTlsFiles (t: Test): Promise<TlsFiles> {
  const dir = mkdtempSync(join(tmpdir(), 'fjs-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string) => join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2']
  await exec('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-subj', '/CN=fastify-jwt-sessions test CA'])
  await exec('openssl', [
    'req', '-x509', ...ec, '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-keyout', file('redis.key'), '-out', file('redis.crt'),
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=CA:FALSE'
  ])
  return { caFile: file('ca.crt'), certFile: file('redis.crt'), keyFile: file('redis.key') }
}

/** redis-server's settings for a TLS port with these files; clients show no certificate. */
function tlsSettings (tlsPort: number, files: TlsFiles): Array<[string, string]> {
  return [['tls-port', String(tlsPort)], ['tls-cert-file', files.certFile], ['tls-key-file', files.keyFile], ['tls-ca-cert-file', files.caFile], ['tls-auth-clients', 'no']]
}

export interface TlsRedisProcess extends RedisProcess {
  tlsPort: number
  /** rediss://127.0.0.1:<tlsPort> */
  tlsUrl: string
}

/**
 * A private redis-server that also listens for TLS on a port of its own. Its
 * plain port stays open for the helpers' own readiness checks and for the
 * test's set-up (ACL SETUSER and such); the app under test is given the TLS
 * port only, where a plaintext client gets no answer.
 */
export async function startTlsRedisServer (t: Test, files: TlsFiles, args: string[] = []): Promise<TlsRedisProcess> {
  const tlsPort = await freePort()
  const server = await startRedisServer(t, [...tlsSettings(tlsPort, files).flatMap(([k, v]) => [`--${k}`, v]), ...args])
  return Object.defineProperties(server, {
    tlsPort: { value: tlsPort, enumerable: true },
    tlsUrl: { value: `rediss://127.0.0.1:${tlsPort}`, enumerable: true }
  }) as TlsRedisProcess
}

export interface SentinelProcess { port: number, readonly process: ChildProcess, kill (): void }

export interface RedisSentinelSetup {
  /** The monitored master's name (REDIS_SENTINEL_NAME). */
  name: string
  primary: RedisProcess
  replica: RedisProcess
  sentinels: SentinelProcess[]
  /** The sentinels as REDIS_SENTINELS lists them (their TLS ports with `tls`). */
  sentinelNodes: Array<{ host: string, port: number }>
  /** Where the data nodes take clients: their TLS ports with `tls`, else their ports. */
  dataPort (node: RedisProcess): number
}

/**
 * Polls the redis or sentinel on `port` (plain, one new connection a try)
 * until `check` holds; fails after 20 s, naming what did not happen.
 */
async function waitFor (port: number, what: string, check: (r: Redis) => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    client.on('error', () => {})
    try {
      await client.connect()
      if (await check(client)) return
    } catch {
      // not up yet
    } finally {
      client.disconnect()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${what} (port ${port}) did not happen within 20 s`)
}

/**
 * A Sentinel set-up on free ports: 1 primary, 1 replica and 3 sentinels
 * (quorum 2) monitoring it under `name`. Debian's package has no
 * `redis-sentinel` binary; `redis-server <file> --sentinel` is the same
 * program. Resolves once the replica has synced and every sentinel names the
 * primary; unless `awaitPeers` is false, also once each sentinel knows the
 * replica and the two others (what a failover needs; each is told them in
 * its file, so this is quick). With `tls`, data nodes and sentinels also take TLS on
 * ports of their own and replicate and monitor over TLS; their plain ports
 * serve the waits below.
 */
export async function startRedisSentinel (t: Test, opts: { name?: string, tls?: TlsFiles, awaitPeers?: boolean } = {}): Promise<RedisSentinelSetup> {
  const name = opts.name ?? 'mymaster'
  const startNode = async (args: string[]): Promise<RedisProcess> => opts.tls
    ? await startTlsRedisServer(t, opts.tls, ['--tls-replication', 'yes', ...args])
    : await startRedisServer(t, args)
  const dataPort = (node: RedisProcess) => (node as Partial<TlsRedisProcess>).tlsPort ?? node.port
  // Without a delay: a diskless sync otherwise waits 5 s for more replicas, on every node a failover may promote.
  const noSyncDelay = ['--repl-diskless-sync-delay', '0']
  const primary = await startNode(noSyncDelay)
  const replica = await startNode(['--replicaof', '127.0.0.1', String(dataPort(primary)), ...noSyncDelay])
  await waitFor(replica.port, 'the replica\'s sync', async (r) => /master_link_status:up/.test(await r.info('replication')))

  const dir = mkdtempSync(join(tmpdir(), 'fjs-sentinel-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const sentinels: SentinelProcess[] = []
  const sentinelNodes = []
  // Each sentinel is told its own id, the replica and its two peers up front, as
  // it would write them into its file once it had learnt them: learning them
  // (INFO every 10 s, hellos every 2 s) took over 20 s on a loaded CI machine.
  const ports = []
  for (let i = 0; i < 3; i++) ports.push({ port: await freePort(), tlsPort: opts.tls ? await freePort() : null, id: String(i + 1).repeat(40) })
  for (let i = 0; i < 3; i++) {
    const { port, tlsPort } = ports[i]!
    // Sentinels greet each other over TLS when tls-replication is on.
    const peers = ports.filter((_, j) => j !== i).map((p) => `sentinel known-sentinel ${name} 127.0.0.1 ${p.tlsPort ?? p.port} ${p.id}`)
    // Sentinel rewrites its file (the peers and replicas it learns): one writable file each.
    const file = join(dir, `sentinel-${i}.conf`)
    writeFileSync(file, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
      ...(opts.tls && tlsPort !== null
        ? [...tlsSettings(tlsPort, opts.tls).map(([k, v]) => `${k} ${v}`), 'tls-replication yes']
        : []),
      `sentinel monitor ${name} 127.0.0.1 ${dataPort(primary)} 2`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel myid ${ports[i]!.id}`,
      `sentinel known-replica ${name} 127.0.0.1 ${dataPort(replica)}`,
      ...peers
    ].join('\n') + '\n')
    const child = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' })
    t.teardown(() => { child.kill('SIGCONT'); child.kill('SIGKILL') })
    sentinels.push({ port, process: child, kill: () => { child.kill('SIGKILL') } })
    sentinelNodes.push({ host: '127.0.0.1', port: tlsPort ?? port })
  }
  for (const { port } of sentinels) {
    await waitFor(port, 'a settled sentinel', async (r) => {
      if (await sentinelMasterPort(r, name) !== dataPort(primary)) return false
      if (opts.awaitPeers === false) return true
      const replicas = await r.call('SENTINEL', 'replicas', name) as unknown[]
      const peers = await r.call('SENTINEL', 'sentinels', name) as unknown[]
      return replicas.length === 1 && peers.length === 2
    })
  }
  return { name, primary, replica, sentinels, sentinelNodes, dataPort }
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
