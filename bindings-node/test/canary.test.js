'use strict'

// A known canary value must never appear in what a program prints or
// serializes by accident: util.inspect, console output, JSON, string
// conversion, error messages and stacks. Only reveal() and revealBuffer()
// return it.

const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const util = require('node:util')
const { after, test } = require('node:test')

const keystead = require('./support/keystead')
const { setEnvironment } = require('./support/moto')

const { Client, FieldNotFoundError, InvalidJsonError, NotTextError } = keystead

const CANARY = 'canary-node-4f2a9c-do-not-print'
const CANARY_BYTES = Buffer.from(CANARY)

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'keystead-node-canary-'))
after(() => fs.rmSync(folder, { recursive: true, force: true }))

/** Renders `value` in every way a program commonly turns a value into text. */
function renderings(value) {
  return {
    inspect: util.inspect(value),
    inspectHidden: util.inspect(value, { showHidden: true, depth: null, getters: true }),
    inspectColors: util.inspect(value, { colors: true, depth: null }),
    format: util.format('%s %o %O %j', value, value, value, value),
    json: JSON.stringify(value),
    jsonNested: JSON.stringify({ nested: [value] }),
    string: String(value),
    template: `${value}`,
    concatenated: '' + value,
  }
}

function assertNoCanary(label, text) {
  assert.equal(typeof text, 'string', `${label} is not text`)
  assert.ok(!text.includes(CANARY), `${label} shows the canary: ${text}`)
  assert.ok(!text.includes(CANARY_BYTES.toString('base64')), `${label} shows the canary in base64: ${text}`)
  assert.ok(!text.includes(CANARY_BYTES.toString('hex')), `${label} shows the canary in hex: ${text}`)
}

test('secret renderings never show the value', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_CANARY: CANARY })
  const client = new Client({})
  try {
    const secret = await client.get('env://KEYSTEAD_NODE_CANARY')
    assert.equal(secret.reveal(), CANARY)

    for (const [label, text] of Object.entries(renderings(secret))) assertNoCanary(label, text)
    assert.equal(String(secret), '[REDACTED]')
    assert.equal(secret.toJSON().value, '[REDACTED]')
    assert.match(util.inspect(secret), /\[REDACTED\]/)
    assert.match(util.inspect(secret), /env:\/\/KEYSTEAD_NODE_CANARY/)
    assert.deepEqual(Object.keys(secret), [])
    assertNoCanary('structured clone', util.inspect(structuredClone(secret), { showHidden: true }))
    assertNoCanary('object spread', util.inspect({ ...secret }))
    for (const [label, text] of Object.entries(renderings(client.getCached('env://KEYSTEAD_NODE_CANARY')))) {
      assertNoCanary(`cached ${label}`, text)
    }
    assertNoCanary('client', util.inspect(client, { showHidden: true, depth: null }))
    assertNoCanary('metrics', JSON.stringify(client.metrics()))
  } finally {
    await client.close()
    restore()
  }
})

test('field and binary secrets never show the value', async () => {
  const json = path.join(folder, 'canary.json')
  fs.writeFileSync(json, JSON.stringify({ password: CANARY, nested: { token: CANARY } }))
  const binary = path.join(folder, 'canary.bin')
  fs.writeFileSync(binary, Buffer.concat([Buffer.from([0xff, 0xfe]), CANARY_BYTES]))
  const client = new Client({})
  try {
    const field = await client.get(`file://${json}#password`)
    assert.equal(field.reveal(), CANARY)
    const whole = await client.get(`file://${json}`)
    const nested = whole.field('nested')
    const bytes = await client.get(`file://${binary}`)
    assert.ok(bytes.revealBuffer().includes(CANARY_BYTES))

    for (const [name, secret] of Object.entries({ field, whole, nested, bytes })) {
      for (const [label, text] of Object.entries(renderings(secret))) assertNoCanary(`${name} ${label}`, text)
    }
  } finally {
    await client.close()
  }
})

test('errors about secret values never show the value', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_CANARY_TEXT: CANARY })
  const json = path.join(folder, 'error.json')
  fs.writeFileSync(json, JSON.stringify({ password: CANARY }))
  const binary = path.join(folder, 'error.bin')
  fs.writeFileSync(binary, Buffer.concat([Buffer.from([0xff]), CANARY_BYTES]))
  const client = new Client({})
  try {
    const errors = []
    const text = await client.get('env://KEYSTEAD_NODE_CANARY_TEXT')
    errors.push(catchError(() => text.field('password'), InvalidJsonError))
    const whole = await client.get(`file://${json}`)
    errors.push(catchError(() => whole.field('missing'), FieldNotFoundError))
    errors.push(await client.get(`file://${json}#missing`).catch((error) => error))
    const bytes = await client.get(`file://${binary}`)
    errors.push(catchError(() => bytes.reveal(), NotTextError))

    assert.equal(errors.length, 4)
    for (const error of errors) {
      assert.ok(error instanceof keystead.KeysteadError, String(error))
      assertNoCanary('message', error.message)
      assertNoCanary('stack', error.stack)
      for (const [label, rendered] of Object.entries(renderings(error))) assertNoCanary(`error ${label}`, rendered)
    }
  } finally {
    await client.close()
    restore()
  }
})

function catchError(body, ErrorType) {
  try {
    body()
  } catch (error) {
    assert.ok(error instanceof ErrorType, `expected ${ErrorType.name}, got ${error}`)
    return error
  }
  assert.fail(`expected ${ErrorType.name}`)
}

test('rotation events never show the value', async () => {
  const file = path.join(folder, 'rotating-canary.txt')
  fs.writeFileSync(file, 'before')
  const client = new Client({ file: { ttl: '300ms' } })
  try {
    const events = []
    client.subscribe(`file://${file}`, (event) => events.push(event))
    await client.get(`file://${file}`)
    fs.writeFileSync(file, CANARY)
    const deadline = Date.now() + 5000
    while (events.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(events.length, 1)
    assert.equal(events[0].secret.reveal(), CANARY)
    for (const [label, text] of Object.entries(renderings(events[0]))) assertNoCanary(`event ${label}`, text)
  } finally {
    await client.close()
  }
})

test('console output of a program never shows the value', () => {
  const program = `
    const keystead = require('keystead')
    const client = new keystead.Client({})
    client.get('env://KEYSTEAD_NODE_CANARY_CHILD').then(async (secret) => {
      console.log(secret)
      console.log('%s %o %j', secret, secret, secret)
      console.info({ secret, cached: client.getCached('env://KEYSTEAD_NODE_CANARY_CHILD') })
      console.dir(secret, { showHidden: true, depth: null })
      console.table([secret.toJSON()])
      console.error('secret:', secret)
      process.stdout.write(String(secret) + '\\n')
      try {
        secret.field('x')
      } catch (error) {
        console.error(error)
        console.log(JSON.stringify(error))
      }
      // The value was there: print its length to prove it.
      console.log('revealed length', secret.reveal().length)
      await client.close()
    })
  `
  const result = spawnSync(process.execPath, ['-e', program], {
    cwd: path.resolve(__dirname, '..'),
    env: { ...process.env, KEYSTEAD_NODE_CANARY_CHILD: CANARY },
    encoding: 'utf8',
    timeout: 30_000,
  })
  assert.equal(result.status, 0, result.stderr)
  assert.match(result.stdout, new RegExp(`revealed length ${CANARY.length}`))
  assert.match(result.stdout, /\[REDACTED\]/)
  assert.match(result.stderr, /InvalidJsonError/)
  assertNoCanary('stdout', result.stdout)
  assertNoCanary('stderr', result.stderr)
})
