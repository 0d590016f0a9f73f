import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import ts from 'typescript'

/**
 * The example server is meant to be built from the public API only: what an
 * app that installed the package could import. Its relative imports may
 * therefore reach only its own files and the source of the package's entry
 * points, read from package.json "exports" (`./dist/plugins/index.js` is
 * `plugins/index.ts` here), never lib/ nor a plugin's internal modules.
 */
const root = resolve('.')
const exampleDir = resolve('example-server')

/** The package's entry points as source files, relative to the repository. */
function publicEntrySources (): Set<string> {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, string | { default?: string }> }
  const entries = new Set<string>()
  for (const target of Object.values(pkg.exports)) {
    const file = typeof target === 'string' ? target : target.default
    if (file === undefined || !file.startsWith('./dist/') || !file.endsWith('.js')) continue
    entries.add(file.slice('./dist/'.length, -'.js'.length) + '.ts')
  }
  return entries
}

function tsFilesUnder (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
}

/** Every module specifier of a file: static imports, re-exports, `import type`, dynamic `import()`. */
function specifiersOf (file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((imported) => imported.fileName)
}

/** Why a specifier of `file` is not public API, or null when it is. */
function violation (file: string, specifier: string, entries: Set<string>): string | null {
  if (!specifier.startsWith('.')) {
    // A bare specifier is another package; reaching into ours by name would bypass "exports" anyway.
    return null
  }
  const target = resolve(dirname(file), specifier).replace(/\.js$/, '.ts')
  if (!relative(exampleDir, target).startsWith('..')) return null
  const inRepo = relative(root, target)
  return entries.has(inRepo) ? null : `${relative(root, file)} imports '${specifier}' (${inRepo}), which is not a public entry point`
}

t.test('the entry points come from package.json "exports"', async (t) => {
  const entries = publicEntrySources()
  t.ok(entries.has('plugins/index.ts'))
  t.ok(entries.has('plugins/token-lifecycle/index.ts'))
  t.ok(entries.has('client/index.ts'))
  // One file of lib/ is public: the types apps augment (`fastify-jwt-sessions/types`); the rest is internal.
  t.same([...entries].filter((entry) => entry.startsWith('lib/')), ['lib/types.ts'], 'of lib/, only the types are an entry point')
})

t.test('the parser sees every kind of import', async (t) => {
  const source = [
    "import a from '../plugins/index.js'",
    "import type { B } from '../lib/types.js'",
    "export { c } from './c.js'",
    "const d = await import('../plugins/token-lifecycle/service.js')"
  ].join('\n')
  t.same(ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName),
    ['../plugins/index.js', '../lib/types.js', './c.js', '../plugins/token-lifecycle/service.js'])
  const entries = publicEntrySources()
  t.equal(violation(resolve('example-server', 'app.ts'), '../plugins/index.js', entries), null)
  t.equal(violation(resolve('example-server', 'demo', 'browser.ts'), '../../client/index.js', entries), null)
  t.equal(violation(resolve('example-server', 'app.ts'), './config.js', entries), null)
  t.equal(violation(resolve('example-server', 'app.ts'), 'fastify', entries), null)
  t.match(violation(resolve('example-server', 'app.ts'), '../lib/errors.js', entries), /not a public entry point/)
  t.match(violation(resolve('example-server', 'app.ts'), '../plugins/token-lifecycle/service.js', entries), /not a public entry point/)
  t.match(violation(resolve('example-server', 'demo', 'index.ts'), '../../lib/keys.js', entries), /not a public entry point/)
})

t.test('example-server imports only the package\'s public entry points', async (t) => {
  const entries = publicEntrySources()
  const files = tsFilesUnder(exampleDir)
  t.ok(files.some((file) => file.endsWith(join('example-server', 'app.ts'))), 'app.ts is among the files read')
  const problems: string[] = []
  let packageImports = 0
  for (const file of files) {
    for (const specifier of specifiersOf(file)) {
      const problem = violation(file, specifier, entries)
      if (problem !== null) problems.push(problem)
      else if (specifier.startsWith('.') && relative(exampleDir, resolve(dirname(file), specifier)).startsWith('..')) packageImports++
    }
  }
  t.ok(packageImports > 0, 'the example does import the package')
  t.same(problems, [])
})
