import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// The test process's own collector, for checking what a structure keeps alive.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/**
 * How many of the objects behind `refs` are gone after full collections. A
 * WeakRef keeps its target until the job that made it ends, so this waits a
 * turn of the event loop first.
 */
export async function countCollected (refs: Array<WeakRef<object>>): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve))
  gc()
  gc()
  return refs.filter((ref) => ref.deref() === undefined).length
}
