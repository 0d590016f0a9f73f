import { expectTypeOf } from 'expect-type'
import { AuthClientError, createAuthClient, memoryStorage } from 'fastify-jwt-sessions/client'
import type { AuthClient, AuthClientOptions } from 'fastify-jwt-sessions/client'

const client = createAuthClient({ baseUrl: 'https://api.example.com', storage: memoryStorage() })
expectTypeOf(client).toEqualTypeOf<AuthClient>()
expectTypeOf(client.fetch).returns.toEqualTypeOf<Promise<Response>>()
expectTypeOf(client.getAccessToken).returns.toEqualTypeOf<Promise<string | null>>()
expectTypeOf(client.login).parameter(0).toHaveProperty('username').toEqualTypeOf<string>()
client.on('session-ended', (event) => { expectTypeOf(event.code).toEqualTypeOf<string>() })
expectTypeOf(new AuthClientError('m', 401, null).code).toEqualTypeOf<string | null>()
expectTypeOf<AuthClientOptions>().toHaveProperty('baseUrl').toEqualTypeOf<string>()

// @ts-expect-error baseUrl is required
createAuthClient({})
// @ts-expect-error no such option
createAuthClient({ baseUrl: '', refreshBefore: 30 })
// @ts-expect-error no such event
client.on('expired', () => {})
