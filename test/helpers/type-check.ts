import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript'

/**
 * The TypeScript compiler in-process, for test/types.test.ts: the package
 * built into a temporary dist/, then consumer programs compiled against it.
 * One process and one cache of parsed files for every program (the
 * declarations of fastify, @types/node and the rest are parsed once), so the
 * whole check stays within seconds rather than one `tsc` start per program.
 */

const parsed = new Map<string, ts.SourceFile>()

/** A compiler host whose parsed files outlive one program (the language service shares them the same way). */
function sharedHost (options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options)
  const parse = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, languageVersionOrOptions, onError, shouldCreate) => {
    const format = typeof languageVersionOrOptions === 'object' ? `${languageVersionOrOptions.languageVersion}:${String(languageVersionOrOptions.impliedNodeFormat)}` : String(languageVersionOrOptions)
    const key = `${format}:${fileName}`
    // Only files that do not change between programs: declarations under node_modules.
    const shared = fileName.includes('/node_modules/') && fileName.endsWith('.d.ts')
    const cached = shared ? parsed.get(key) : undefined
    if (cached !== undefined) return cached
    const file = parse(fileName, languageVersionOrOptions, onError, shouldCreate)
    if (shared && file !== undefined) parsed.set(key, file)
    return file
  }
  return host
}

function report (diagnostics: readonly ts.Diagnostic[], base: string): string[] {
  return diagnostics.map((d) => ts.formatDiagnostic(d, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => base,
    getNewLine: () => '\n'
  }).trim())
}

function readConfig (file: string): { options: ts.CompilerOptions, fileNames: string[] } {
  const config = ts.readConfigFile(file, (f) => ts.sys.readFile(f))
  if (config.error !== undefined) throw new Error(report([config.error], process.cwd()).join('\n'))
  const parsedConfig = ts.parseJsonConfigFileContent(config.config, ts.sys, resolve(file, '..'))
  if (parsedConfig.errors.length > 0) throw new Error(report(parsedConfig.errors, process.cwd()).join('\n'))
  return { options: parsedConfig.options, fileNames: parsedConfig.fileNames }
}

/** `tsc -p tsconfig.build.json` with its declarations written under `outDir`: the errors, none when it built. */
export function buildDeclarations (root: string, outDir: string): string[] {
  const { options, fileNames } = readConfig(join(root, 'tsconfig.build.json'))
  const buildOptions: ts.CompilerOptions = { ...options, outDir, emitDeclarationOnly: true, declaration: true, sourceMap: false, declarationMap: false }
  const program = ts.createProgram(fileNames, buildOptions, sharedHost(buildOptions))
  const emitted = program.emit()
  return report([...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics], root)
}

/**
 * A strict consumer app and the package it installed, under `dir` (inside the
 * repo, so that both find fastify, expect-type ... in its node_modules):
 * `<dir>/package` (the package.json; the build goes to its dist/) and
 * `<dir>/app` (the type test folders, `node_modules/fastify-jwt-sessions`
 * linking to the package). Answers both paths.
 */
export function consumerApp (root: string, dir: string, projects: string): { pkg: string, app: string } {
  rmSync(dir, { recursive: true, force: true })
  const pkg = join(dir, 'package')
  mkdirSync(pkg, { recursive: true })
  writeFileSync(join(pkg, 'package.json'), readFileSync(join(root, 'package.json')))
  const app = join(dir, 'app')
  mkdirSync(join(app, 'node_modules'), { recursive: true })
  symlinkSync(pkg, join(app, 'node_modules', 'fastify-jwt-sessions'))
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'strict-consumer', private: true, type: 'module' }))
  cpSync(projects, app, { recursive: true })
  return { pkg, app }
}

/** Compiles one folder of the consumer app as a program of its own, with the app's tsconfig.json: the errors, none when it compiled. */
export function checkProject (app: string, folder: string, overrides: ts.CompilerOptions = {}): string[] {
  const { options } = readConfig(join(app, 'tsconfig.json'))
  const projectOptions = { ...options, ...overrides }
  const files = readdirSync(join(app, folder)).filter((f) => f.endsWith('.ts')).map((f) => join(app, folder, f))
  const program = ts.createProgram(files, projectOptions, sharedHost(projectOptions))
  return report(ts.getPreEmitDiagnostics(program), app)
}
