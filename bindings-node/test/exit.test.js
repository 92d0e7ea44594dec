'use strict'

// A program that is done exits: nothing keystead starts keeps the event
// loop alive after close(), and an open client does not either. Each case
// runs a separate node process and must end with code 0 well within
// EXIT_LIMIT_MS.

const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { test } = require('node:test')

// Generous for a loaded 2-core machine: these programs take well under a
// second when the machine is idle.
const EXIT_LIMIT_MS = 15_000

const PACKAGE_DIR = path.resolve(__dirname, '..')
// A file every program can subscribe to and read.
const WATCHED_FILE = JSON.stringify(path.join(PACKAGE_DIR, 'package.json'))

/** Runs `program` with `node -e` and resolves to its exit code, signal, output and run time. */
function runProgram(program) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['-e', program], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, KEYSTEAD_NODE_EXIT: 'exit-value' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_LIMIT_MS)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output, elapsedMs: Date.now() - started })
    })
  })
}

async function assertExitsCleanly(program, expectedOutput) {
  const result = await runProgram(program)
  assert.equal(result.signal, null, `killed after ${EXIT_LIMIT_MS} ms; output:\n${result.output}`)
  assert.equal(result.code, 0, result.output)
  assert.ok(result.elapsedMs < EXIT_LIMIT_MS)
  assert.equal(result.output, expectedOutput)
}

const READ_AND_SUBSCRIBE = `
  const { Client } = require('keystead')
  const client = new Client({ file: { ttl: '1s' } })
  client.subscribe('env://KEYSTEAD_NODE_EXIT', () => {})
  client.subscribe('file://' + ${WATCHED_FILE}, () => {})
`

test('process exits after awaited close', async () => {
  await assertExitsCleanly(
    `${READ_AND_SUBSCRIBE}
    client.get('env://KEYSTEAD_NODE_EXIT').then(async (secret) => {
      console.log(secret.reveal(), client.getCached('env://KEYSTEAD_NODE_EXIT') !== undefined)
      await client.close()
      console.log('closed')
    })`,
    'exit-value true\nclosed\n',
  )
})

test('process exits after close that nobody awaits', async () => {
  await assertExitsCleanly(
    `${READ_AND_SUBSCRIBE}
    client.get('env://KEYSTEAD_NODE_EXIT').then((secret) => {
      console.log(secret.reveal())
      client.close()
    })`,
    'exit-value\n',
  )
})

test('process exits with a client never closed', async () => {
  await assertExitsCleanly(
    `${READ_AND_SUBSCRIBE}
    client.get('env://KEYSTEAD_NODE_EXIT').then((secret) => console.log(secret.reveal()))`,
    'exit-value\n',
  )
})

test('process exits with an idle client', async () => {
  await assertExitsCleanly(`const { Client } = require('keystead'); new Client({}); console.log('made')`, 'made\n')
})

test('pending get keeps the process until it settles', async () => {
  // The read is still in flight on the runtime when the script's own code
  // ends. The process must wait for it, print the result, and then exit.
  await assertExitsCleanly(
    `const { Client } = require('keystead')
    const client = new Client({})
    client.get('file://' + ${WATCHED_FILE}).then((secret) => console.log(secret.reveal().length > 0))`,
    'true\n',
  )
})

test('listener exception reaches uncaughtException', async () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'keystead-node-exit-'))
  const file = JSON.stringify(path.join(folder, 'rotating.txt'))
  try {
    await assertExitsCleanly(
      `const fs = require('node:fs')
      const { Client } = require('keystead')
      fs.writeFileSync(${file}, 'v1')
      const client = new Client({ file: { ttl: '300ms' } })
      // A subscription does not keep the process alive; this timer does.
      const keepAlive = setTimeout(() => {}, 10_000)
      process.on('uncaughtException', (error) => {
        console.log('uncaught:', error.message)
        clearTimeout(keepAlive)
        client.close()
      })
      client.subscribe('file://' + ${file}, () => {
        throw new Error('listener failed')
      })
      client.get('file://' + ${file}).then(() => fs.writeFileSync(${file}, 'v2'))`,
      'uncaught: listener failed\n',
    )
  } finally {
    fs.rmSync(folder, { recursive: true, force: true })
  }
})
