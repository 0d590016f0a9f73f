import { join, resolve } from 'node:path'
import t from 'tap'
import { buildDeclarations, checkProject, consumerApp } from './helpers/type-check.js'

// The package as a strict app gets it: built (tsconfig.build.json), installed
// in an app's node_modules, and compiled by the programs of test/types (its
// README says what each one covers).
const root = resolve('.')
const { pkg, app } = consumerApp(root, resolve('.tap', 'types'), resolve('test', 'types'))

t.test('the package builds', async (t) => {
  t.same(buildDeclarations(root, join(pkg, 'dist')), [])
})

t.test('a strict app (skipLibCheck false) that declares its claims: every shipped declaration compiles, every type test holds', async (t) => {
  t.same(checkProject(app, 'app'), [])
})

t.test('claims declared on fastify-jwt-sessions/types apply in an app that imports subpaths only', async (t) => {
  t.same(checkProject(app, 'subpaths', { skipLibCheck: true }), [])
})

t.test('an app that declares no claims hands in any claims and reads them back as unknown', async (t) => {
  t.same(checkProject(app, 'plain', { skipLibCheck: true }), [])
})
