/**
 * The demo users. User storage is the application's job, not this package's:
 * the example keeps them in memory. Plain-text passwords are for the demo only.
 */
export interface DemoUser {
  password: string
  roles: string[]
}

export function demoUsers (): Map<string, DemoUser> {
  return new Map([
    ['alice', { password: 'alice-pass', roles: ['user'] }],
    ['bob', { password: 'bob-pass', roles: ['user'] }],
    ['root', { password: 'root-pass', roles: ['admin'] }]
  ])
}
