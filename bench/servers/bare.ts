/** Variant "bare": a Fastify route with no authentication at all (the ceiling). */
import Fastify from 'fastify'
import { meBody, POOL_SIZE, serve } from './common.js'

const app = Fastify({ logger: false })
app.get('/api/me', async () => meBody('bench-0', 'sid', ['user']))
// Same Authorization headers as the other variants (ignored here), so the load is comparable.
await serve(app, async () => Array.from({ length: POOL_SIZE }, (_, i) => `opaque-${i}`))
