/** Helpers for tests of replicated set-ups: waits, and what a node says of its role and replication. */
import { Redis } from 'ioredis'

type Test = { teardown: (fn: () => unknown) => void }

/**
 * A plain connection to one server (a Cluster node, a replica), dropped when
 * the test ends; it never reconnects unless `reconnect` (a Sentinel replica:
 * its promotion closes its clients' connections).
 */
export function nodeClient (t: Test, port: number, reconnect = false): Redis {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: reconnect ? 20 : 0, retryStrategy: reconnect ? () => 50 : () => null })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  return client
}

/** Waits for a condition, polled every `intervalMs`; throws after `boundMs` rather than hang a test. */
export async function until (what: string, condition: () => Promise<boolean> | boolean, boundMs = 30_000, intervalMs = 20): Promise<void> {
  const deadline = performance.now() + boundMs
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** The id of the Cluster master serving a key's slot, per CLUSTER SLOTS on the node `client` talks to. */
export async function masterOf (client: Redis, key: string): Promise<string> {
  const slot = await client.cluster('KEYSLOT', key) as number
  const ranges = await client.cluster('SLOTS')
  return ranges.find(([from, to]) => from <= slot && slot <= to)![2][2]
}

/** Whether a Cluster node sees itself as a master (its `myself` line of CLUSTER NODES): a replica's promotion. */
export async function isMaster (client: Redis): Promise<boolean> {
  const nodes = await client.cluster('NODES') as string
  const me = nodes.split('\n').find((line) => line.includes('myself'))!
  return me.split(' ')[2]!.split(',').includes('master')
}

/** A field of an INFO section, such as `master_repl_offset`. */
export function infoField (info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1]
}

/** The port of the master a sentinel names for `name` (SENTINEL get-master-addr-by-name), or null if it names none. */
export async function sentinelMasterPort (sentinel: Redis, name: string): Promise<number | null> {
  const master = await sentinel.call('SENTINEL', 'get-master-addr-by-name', name) as [string, string] | null
  return master === null ? null : Number(master[1])
}
