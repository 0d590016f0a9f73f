import { buildApp } from './app.js'
import { configFromEnv, redactedUrl } from './config.js'

const config = configFromEnv()
const app = await buildApp(config, { logger: { level: process.env.LOG_LEVEL ?? 'info' } })
if (config.jwtSecretGenerated) {
  app.log.warn('AUTH_JWT_SECRET is not set: using a random secret. Tokens will not survive a restart nor work across instances.')
}
const hostPorts = (nodes: Array<{ host: string, port: number }>) => nodes.map((n) => `${n.host}:${n.port}`).join(',')
const redisTarget = config.clusterNodes
  ? `Redis Cluster ${hostPorts(config.clusterNodes)}`
  : config.sentinels
    ? `Redis Sentinel ${hostPorts(config.sentinels)} (master '${config.sentinelName}')`
    : `Redis ${redactedUrl(config.redisUrl)}`
await app.listen({ port: config.port, host: config.host })
app.log.info(`fastify-jwt-sessions example listening on http://${config.host}:${config.port} using ${redisTarget} (key prefix '${config.keyPrefix}')`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
