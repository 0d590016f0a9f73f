import { buildApp } from './app.js'
import { configFromEnv } from './config.js'

const config = configFromEnv()
const app = await buildApp(config, { logger: { level: process.env.LOG_LEVEL ?? 'info' } })
if (config.jwtSecretGenerated) {
  app.log.warn('AUTH_JWT_SECRET is not set: using a random secret. Tokens will not survive a restart nor work across instances.')
}
const redisTarget = config.clusterNodes
  ? `Redis Cluster ${config.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
  : `Redis ${config.redisUrl.replace(/\/\/[^@/]*@/, '//***@')}`
await app.listen({ port: config.port, host: config.host })
app.log.info(`fastify-jwt-sessions example listening on http://${config.host}:${config.port} using ${redisTarget} (key prefix '${config.keyPrefix}')`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
