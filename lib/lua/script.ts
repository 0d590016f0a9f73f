import type { ScriptDefinition } from '../redis.js'
import type { OnceKeys } from '../types.js'
import { LATE, SPEND } from './preludes.js'

/** How the header hands an ARGV to the body: as Redis sent it, or through `tonumber`. */
export type ArgType = 'string' | 'number'
export type ScriptArg = string | number | Buffer
/** A script call's arguments: the number of keys, then keys and ARGV (what ScriptCall takes). */
export type ScriptCallArgs = [numKeys: number, ...keysAndArgs: ScriptArg[]]

export interface LuaScriptSpec<K extends string, A extends string> {
  /** Readable name, for people reading the code and the logs. */
  name: string
  /** KEYS, in order: each becomes `local <name> = KEYS[i]`. */
  keys: readonly K[]
  /**
   * ARGV, in order: each becomes `local <name> = ARGV[i]` ('string') or
   * `local <name> = tonumber(ARGV[i])` ('number'). An ARGV a call may leave
   * out (nil in Lua) must be 'string'.
   */
  argv: Readonly<Record<A, ArgType>>
  /**
   * One-time keys (OnceKeys) follow the declared KEYS and their TTLs the
   * declared ARGV; the SPEND prelude comes with them (`spend()`), and the
   * header sets ONCE_KEY and ONCE_TTL, where they start.
   */
  once?: boolean
  /** A list of further values after everything else, as a Lua table of that name (for example name, value pairs). */
  rest?: string
  /** Lua preludes (preludes.ts) the body calls. */
  preludes?: readonly string[]
  /** The script itself: names only, never `KEYS[...]` or `ARGV[...]`; statuses interpolated from Status. */
  body: string
}

export interface LuaScript<K extends string, A extends string> extends ScriptDefinition {
  /**
   * The call's arguments by name, in the order the header reads them:
   * [number of keys, ...keys, ...one-time keys, ...argv, ...their TTLs, ...rest].
   * ARGV left undefined are not sent; only the last ones may be, and only
   * with no one-time key or rest after them.
   */
  args (keys: Readonly<Record<K, string>>, argv: Readonly<Record<A, ScriptArg | undefined>>, once?: OnceKeys, rest?: readonly ScriptArg[]): ScriptCallArgs
  /**
   * Where each named key and ARGV sits in what `args` builds when the call
   * carries no one-time key: lets a hot path build its list once and fill in
   * the changing values in place, with no allocation per call.
   */
  readonly at: Readonly<Record<K | A, number>>
}

const LUA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const LUA_RESERVED = new Set([
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'if', 'in', 'local', 'nil', 'not', 'or',
  'repeat', 'return', 'then', 'true', 'until', 'while', 'KEYS', 'ARGV', 'ONCE_KEY', 'ONCE_TTL',
  // Globals of Redis's Lua the header and the preludes use.
  'redis', 'unpack', 'tonumber', 'tostring', 'type', 'pairs', 'ipairs', 'string', 'table', 'math', 'cjson', 'bit', 'struct', 'cmsgpack'
])

/** The names a prelude defines at its top level (`local function f`, `local A, B = ...`). */
function preludeNames (preludes: readonly string[]): string[] {
  const names: string[] = []
  for (const prelude of preludes) {
    for (const match of prelude.matchAll(/^local (?:function )?([A-Za-z_][A-Za-z0-9_, ]*?)\s*[=(]/gm)) {
      for (const name of match[1].split(',')) names.push(name.trim())
    }
  }
  return names
}

/**
 * Declares a Lua script with named KEYS and ARGV. The emitted Lua starts with
 * a header naming every key and argument (`local sid = ARGV[1]` ...), then
 * its preludes, then the body, so a body reads names, never positions; and
 * the JS side builds the argument list by the same names (`args`), so the two
 * can no longer drift apart. Checked once, when declared (a module's load).
 */
export function defineLuaScript<const K extends string, const A extends string> (spec: LuaScriptSpec<K, A>): LuaScript<K, A> {
  const keyNames: readonly K[] = spec.keys
  const argNames = Object.keys(spec.argv) as A[]
  const names = [...keyNames, ...argNames, ...(spec.rest === undefined ? [] : [spec.rest])]
  const seen = new Set<string>()
  for (const name of names) {
    if (!LUA_NAME.test(name) || LUA_RESERVED.has(name)) throw new TypeError(`defineLuaScript ${spec.name}: '${name}' is not a usable Lua name`)
    if (seen.has(name)) throw new TypeError(`defineLuaScript ${spec.name}: '${name}' is declared twice`)
    seen.add(name)
  }
  // SPEND first: the other preludes may call spend().
  const preludes = [...(spec.once === true ? [SPEND] : []), ...(spec.preludes ?? [])]
  for (const name of preludeNames(preludes)) {
    if (seen.has(name)) throw new TypeError(`defineLuaScript ${spec.name}: '${name}' would hide the prelude's own '${name}'`)
  }
  if (/\b(KEYS|ARGV)\s*\[/.test(spec.body)) throw new TypeError(`defineLuaScript ${spec.name}: the body must use the declared names, not KEYS[...] or ARGV[...]`)

  const onceKey = keyNames.length + 1
  const onceTtl = argNames.length + 1
  const header = [`-- ${spec.name}: KEYS and ARGV by name (lib/lua/script.ts)`]
  keyNames.forEach((name, i) => header.push(`local ${name} = KEYS[${i + 1}]`))
  argNames.forEach((name, i) => header.push(spec.argv[name] === 'number' ? `local ${name} = tonumber(ARGV[${i + 1}])` : `local ${name} = ARGV[${i + 1}]`))
  if (spec.once === true) header.push(`local ONCE_KEY, ONCE_TTL = ${onceKey}, ${onceTtl}`)
  if (spec.rest !== undefined) {
    // After the one-time keys' TTLs, one per key past the declared ones.
    header.push(`local ${spec.rest} = { unpack(ARGV, ${onceTtl} + #KEYS - ${keyNames.length}) }`)
  }
  const lua = [header.join('\n'), ...preludes, spec.body].join('\n')

  const at = {} as Record<K | A, number>
  keyNames.forEach((name, i) => { at[name] = 1 + i })
  argNames.forEach((name, i) => { at[name] = 1 + keyNames.length + i })

  function args (keys: Readonly<Record<K, string>>, argv: Readonly<Record<A, ScriptArg | undefined>>, once?: OnceKeys, rest?: readonly ScriptArg[]): ScriptCallArgs {
    const onceKeys = once?.onceKeys ?? []
    if (onceKeys.length !== 0 && spec.once !== true) throw new TypeError(`${spec.name}: takes no one-time keys`)
    const out: ScriptCallArgs = [keyNames.length + onceKeys.length]
    for (const name of keyNames) out.push(keys[name])
    for (const key of onceKeys) out.push(key)
    let sent = argNames.length
    for (let i = 0; i < argNames.length; i++) {
      const value = argv[argNames[i]]
      if (value === undefined) {
        sent = Math.min(sent, i)
      } else {
        if (sent < argNames.length) throw new TypeError(`${spec.name}: ARGV '${argNames[sent]}' left out before '${argNames[i]}'`)
        out.push(value)
      }
    }
    const more = onceKeys.length !== 0 || (rest !== undefined && rest.length !== 0)
    if (sent < argNames.length && more) throw new TypeError(`${spec.name}: ARGV '${argNames[sent]}' left out before what follows it`)
    if (once !== undefined) for (const ttl of once.onceTtls) out.push(ttl)
    if (rest !== undefined) for (const value of rest) out.push(value)
    return out
  }

  return Object.freeze({ name: spec.name, lua, args, at: Object.freeze(at) })
}

export interface IssueScriptSpec<A extends string> {
  name: string
  /** ARGV; `writeBy` (the store guard's, lib/redis.ts) is added last. */
  argv: Readonly<Record<A, ArgType>>
  rest?: string
  /** The preludes the body calls (LATE and SPEND come with every issuing script). */
  preludes: readonly string[]
  /** What the script does once it may: not late, its one-time keys spent. */
  body: string
}

/**
 * A script that issues tokens (login's OPEN, refresh's ROTATE), on the user's
 * sessions hash (`sessions`). Its protocol starts the same for all: past the
 * store guard's `writeBy` (LATE) it does nothing and answers an error (503),
 * so a call answered 503 changes nothing when a stalled Redis runs it later;
 * then it spends its one-time keys, all or none, whatever it answers next,
 * and answers { Status.onceSpentBase + i } when the i-th was spent already.
 */
export function defineIssueScript<const A extends string> (spec: IssueScriptSpec<A>): LuaScript<'sessions', A | 'writeBy'> {
  return defineLuaScript<'sessions', A | 'writeBy'>({
    name: spec.name,
    keys: ['sessions'],
    argv: { ...spec.argv, writeBy: 'string' } as Readonly<Record<A | 'writeBy', ArgType>>,
    once: true,
    rest: spec.rest,
    preludes: [...spec.preludes, LATE],
    body: `
local refused = late(writeBy)
if refused then return refused end
local spent = spend()
if spent then return { spent } end
` + spec.body
  })
}
