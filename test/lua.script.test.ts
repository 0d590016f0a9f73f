import { Redis } from 'ioredis'
import t from 'tap'
import { INVALIDATE, RECORD } from '../lib/lua/preludes.js'
import { defineLuaScript } from '../lib/lua/script.js'
import { Status } from '../lib/lua/status.js'
import { defineScript } from '../lib/redis.js'
import { OPEN, VERIFY } from '../plugins/token-lifecycle/scripts.js'
import { ROTATE } from '../plugins/refresh-rotation/scripts.js'
import { REDIS_URL, cleanupPrefix, uniquePrefix } from './helpers/app.js'

const once = (keys: string[], ttls: number[]) => ({ onceKeys: keys, onceTtls: ttls, onceErrors: keys.map(() => () => new Error('spent')) })

t.test('a script declared by name: its header names KEYS and ARGV, statuses are interpolated, the body reads names only', async (t) => {
  const script = defineLuaScript({
    name: 'demo',
    keys: ['counter'],
    argv: { label: 'string', step: 'number' },
    body: `return { ${Status.replaced}, label }`
  })
  t.equal(script.name, 'demo')
  t.match(script.lua, /^-- demo: KEYS and ARGV by name/)
  t.match(script.lua, /\nlocal counter = KEYS\[1\]\nlocal label = ARGV\[1\]\nlocal step = tonumber\(ARGV\[2\]\)\n/)
  t.match(script.lua, /return \{ 2, label \}$/, 'Status.replaced interpolated')
  t.notMatch(script.lua, /ONCE_KEY/, 'no one-time keys declared: no SPEND')
  t.same(script.at, { counter: 1, label: 2, step: 3 })
})

t.test('the argument list is built by name, in the order the header reads it', async (t) => {
  const script = defineLuaScript({
    name: 'full',
    keys: ['a', 'b'],
    argv: { x: 'number', y: 'string', late: 'string' },
    once: true,
    rest: 'extra',
    body: 'return spend()'
  })
  t.match(script.lua, /local ONCE_KEY, ONCE_TTL = 3, 4\n/, 'one-time keys after the two keys, their TTLs after the three ARGV')
  t.match(script.lua, /local extra = \{ unpack\(ARGV, 4 \+ #KEYS - 2\) \}/)
  t.match(script.lua, /local function spend \(\)/, 'SPEND comes with once: true')
  t.same(script.args({ b: 'B', a: 'A' }, { y: 'Y', late: 'L', x: 1 }), [2, 'A', 'B', 1, 'Y', 'L'], 'names, not the order of the object')
  t.same(script.args({ a: 'A', b: 'B' }, { x: 1, y: 'Y', late: 'L' }, once(['o1', 'o2'], [10, 20]), ['f', 'v']),
    [4, 'A', 'B', 'o1', 'o2', 1, 'Y', 'L', 10, 20, 'f', 'v'])
  t.same(script.args({ a: 'A', b: 'B' }, { x: 1, y: 'Y', late: undefined }), [2, 'A', 'B', 1, 'Y'], 'a trailing ARGV left out is not sent')
  t.same(script.args({ a: 'A', b: 'B' }, { x: 1, y: undefined, late: undefined }, once([], []), []), [2, 'A', 'B', 1], 'nor two, when nothing follows')
  t.throws(() => script.args({ a: 'A', b: 'B' }, { x: 1, y: undefined, late: 'L' }), /ARGV 'y' left out before 'late'/)
  t.throws(() => script.args({ a: 'A', b: 'B' }, { x: 1, y: 'Y', late: undefined }, once(['o1'], [1])), /ARGV 'late' left out before what follows it/)
  t.throws(() => script.args({ a: 'A', b: 'B' }, { x: 1, y: 'Y', late: undefined }, undefined, ['f']), /ARGV 'late' left out before what follows it/)
  const plain = defineLuaScript({ name: 'plain', keys: ['k'], argv: {}, body: 'return 1' })
  t.throws(() => plain.args({ k: 'K' }, {}, once(['o'], [1])), /plain: takes no one-time keys/)
})

t.test('declaring a script checks its names once, when declared', async (t) => {
  const bad = (spec: Partial<Parameters<typeof defineLuaScript>[0]>) => () => defineLuaScript({ name: 'bad', keys: [], argv: {}, body: 'return 0', ...spec } as never)
  t.throws(bad({ keys: ['1st'] }), /'1st' is not a usable Lua name/)
  t.throws(bad({ argv: { end: 'string' } }), /'end' is not a usable Lua name/)
  t.throws(bad({ keys: ['ARGV'] }), /'ARGV' is not a usable Lua name/)
  t.throws(bad({ rest: 'unpack' }), /'unpack' is not a usable Lua name/, 'the header itself calls unpack')
  t.throws(bad({ keys: ['k'], argv: { k: 'string' } }), /'k' is declared twice/)
  t.throws(bad({ argv: { a: 'string' }, rest: 'a' }), /'a' is declared twice/)
  t.throws(bad({ body: 'return ARGV[1]' }), /the body must use the declared names/)
  t.throws(bad({ body: 'return KEYS [1]' }), /the body must use the declared names/)
  t.throws(bad({ argv: { record: 'string' }, preludes: [RECORD] }), /'record' would hide the prelude's own 'record'/)
  t.throws(bad({ argv: { LIVE: 'number' }, preludes: [RECORD] }), /'LIVE' would hide the prelude's own 'LIVE'/)
  t.throws(bad({ argv: { spend: 'string' }, once: true }), /'spend' would hide/)
  t.doesNotThrow(bad({ argv: { invalidated: 'string' }, preludes: [INVALIDATE] }), 'a name that only starts like a prelude\'s is fine')
})

t.test('the package\'s scripts: the per-request call keeps its fixed arity; OPEN and ROTATE take their lists by name', async (t) => {
  t.same(VERIFY.at, { sessions: 1, sid: 2, now: 3, claimsVersion: 4, touch: 5, idle: 6, retention: 7, writeBy: 8 })
  t.same(VERIFY.args({ sessions: 's' }, { sid: 'x', now: 1, claimsVersion: 1, touch: '2', idle: '3', retention: '4', writeBy: undefined }),
    [1, 's', 'x', 1, 1, '2', '3', '4'], 'no writeBy without one-time keys')
  t.match(OPEN.lua, /local fields = \{ unpack\(ARGV, 14 \+ #KEYS - 1\) \}/)
  t.match(ROTATE.lua, /local bindings = \{ unpack\(ARGV, 10 \+ #KEYS - 1\) \}/)
  for (const script of [VERIFY, OPEN, ROTATE]) t.notMatch(script.lua, /\$\{/, `${script.name}: every status interpolated`)
})

t.test('on Redis: named arguments, one-time keys spent all or none, the answer of the first already spent', async (t) => {
  const prefix = uniquePrefix('lua')
  cleanupPrefix(t, prefix)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const script = defineLuaScript({
    name: 'lua_test',
    keys: ['target'],
    argv: { value: 'string', ttl: 'number' },
    once: true,
    rest: 'extra',
    body: `
local spent = spend()
if spent then return spent end
redis.call('SET', target, value .. ':' .. #extra, 'PX', ttl)
return ${Status.ok}
`
  })
  const call = defineScript(redis, script)
  const key = (name: string) => `${prefix}:{u}:${name}`
  const run = (keys: string[]) => call(...script.args({ target: key('t') }, { value: 'v', ttl: 60_000 }, once(keys.map(key), keys.map(() => 60_000)), ['a', 'b', 'c']))
  t.equal(await run(['o1', 'o2']), Status.ok)
  t.equal(await redis.get(key('t')), 'v:3', 'the rest after the TTLs: three values')
  t.equal(await run(['o3', 'o2']), Status.onceSpentBase + 1, 'the second key was spent')
  t.equal(await redis.exists(key('o3')), 0, 'all or none: the first key is not left spent')
  t.equal(await run([]), Status.ok, 'no one-time keys: nothing to spend')
})
