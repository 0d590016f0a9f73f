// README "request.auth", as written (test/types.test.ts checks the README's block is this one).
import Fastify from 'fastify'
import { tokenLifecycle } from 'fastify-jwt-sessions'
import './claims.js'

const app = Fastify()
await app.register(tokenLifecycle, { jwt: { secret: 's' } })

import { authOrNull } from 'fastify-jwt-sessions'

app.get('/api/me', { onRequest: app.authenticate }, async (request) => ({ roles: request.auth.claims.roles }))
app.get('/api/greeting', async (request) => ({ hello: authOrNull(request)?.userId ?? 'stranger' }))
