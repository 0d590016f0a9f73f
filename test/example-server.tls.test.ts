import t from 'tap'
import { redisDeployment, runContractFlows } from './helpers/contract-flows.js'
import { makeTlsFiles, startTlsRedisServer } from './helpers/redis-server.js'

t.test('the contract flows through the example app over TLS (rediss:// and REDIS_CA_FILE)', async (t) => {
  const files = await makeTlsFiles(t)
  const server = await startTlsRedisServer(t, files)
  const app = await runContractFlows(t, redisDeployment({ REDIS_URL: server.tlsUrl, REDIS_CA_FILE: files.caFile }))
  const stream = (app.redis as unknown as { stream: { encrypted?: boolean, remotePort: number } }).stream
  t.ok(stream.encrypted, 'the connection is TLS')
  t.equal(stream.remotePort, server.tlsPort)
  t.equal(app.tokens.scriptLane, null, 'TLS clients get no script lane: every check goes through the shared client')
})
