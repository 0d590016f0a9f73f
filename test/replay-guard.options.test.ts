import t from 'tap'
import { checkOptions } from '../plugins/replay-guard/options.js'
import type { DpopOptions, ReplayGuardOptions } from '../plugins/replay-guard/options.js'

t.test('without dpop, or with dpop false, DPoP is off', async (t) => {
  t.same(checkOptions({}), { dpop: null })
  t.same(checkOptions({ dpop: false }), { dpop: null })
})

t.test('dpop: true takes the defaults, resolved and frozen', async (t) => {
  const options = checkOptions({ dpop: true })
  t.same(options.dpop, { required: false, algorithms: ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'], iatWindowMs: 60_000, origin: null })
  t.ok(Object.isFrozen(options) && Object.isFrozen(options.dpop) && Object.isFrozen(options.dpop!.algorithms))
})

t.test('dpop options are normalised', async (t) => {
  const options = checkOptions({ dpop: { required: true, algorithms: ['ES384', 'RS512'], iatWindow: '2m', origin: 'HTTPS://Api.Example.com:443/' } })
  t.same(options.dpop, { required: true, algorithms: ['ES384', 'RS512'], iatWindowMs: 120_000, origin: 'https://api.example.com' })
  t.equal(checkOptions({ dpop: { origin: 'http://localhost:3000' } }).dpop!.origin, 'http://localhost:3000')
})

t.test('bad dpop options fail at register time with a clear message', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    ['yes', /dpop must be a boolean or an object/],
    [null, /dpop must be a boolean or an object/],
    [{ required: 'yes' }, /dpop.required must be a boolean/],
    [{ algorithms: [] }, /dpop.algorithms/],
    [{ algorithms: 'ES256' }, /dpop.algorithms/],
    [{ algorithms: ['HS256'] }, /dpop.algorithms/],
    [{ algorithms: ['none'] }, /dpop.algorithms/],
    [{ iatWindow: 0 }, /dpop.iatWindow must be greater than zero/],
    [{ iatWindow: 'soon' }, /dpop.iatWindow/],
    [{ iatWindow: '11m' }, /at most 10 minutes/],
    [{ origin: 42 }, /dpop.origin/],
    [{ origin: 'not a url' }, /dpop.origin/],
    [{ origin: 'ftp://api.example.com' }, /dpop.origin/],
    [{ origin: 'https://api.example.com/v1' }, /dpop.origin/],
    [{ origin: 'https://api.example.com/?q=1' }, /dpop.origin/],
    [{ origin: 'https://api.example.com/#x' }, /dpop.origin/]
  ]
  for (const [dpop, message] of bad) {
    t.throws(() => checkOptions({ dpop: dpop as DpopOptions } as ReplayGuardOptions), { name: 'TypeError', message }, JSON.stringify(dpop))
  }
})
