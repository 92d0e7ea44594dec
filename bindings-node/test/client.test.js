'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { after, test } = require('node:test')
const { setTimeout: sleep } = require('node:timers/promises')

const keystead = require('./support/keystead')
const { setEnvironment } = require('./support/moto')

const { Client, ClosedError, ConfigError, FieldNotFoundError, InvalidJsonError, InvalidReferenceError } = keystead
const { KeysteadError, NotFoundError, NotTextError, Secret, Subscription } = keystead

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'keystead-node-client-'))
after(() => fs.rmSync(folder, { recursive: true, force: true }))

function writeFile(name, contents) {
  const file = path.join(folder, name)
  fs.writeFileSync(file, contents)
  return file
}

/** Runs `body` with a fresh client and closes it afterwards. */
async function withClient(config, body) {
  const client = new Client(config)
  try {
    return await body(client)
  } finally {
    await client.close()
  }
}

/** Polls `condition` every 20 ms until it is true or `timeoutMs` passes. */
async function waitFor(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

test('config object uses the keystead.toml schema', async () => {
  await withClient({ cache: { ttl: '45s', max_entries: 10 } }, async (client) => {
    assert.equal(client.closed, false)
  })
})

test('config object with unknown key throws ConfigError', () => {
  assert.throws(
    () => new Client({ cache: { tll: '45s' } }),
    (error) => {
      assert.ok(error instanceof ConfigError)
      assert.ok(error instanceof KeysteadError)
      assert.ok(error instanceof Error)
      assert.equal(error.name, 'ConfigError')
      assert.equal(error.code, 'ERR_KEYSTEAD_CONFIG')
      assert.equal(error.errorClass, 'config')
      assert.match(error.message, /tll/)
      assert.match(error.message, /config object passed to new Client/)
      return true
    },
  )
})

test('config object with bad duration throws ConfigError', () => {
  assert.throws(() => new Client({ cache: { ttl: 'soon' } }), (error) => {
    assert.ok(error instanceof ConfigError)
    assert.match(error.message, /invalid duration `soon`/)
    return true
  })
})

test('config path reads keystead.toml', async () => {
  const file = writeFile('keystead.toml', '[cache]\nttl = "30s"\n')
  await withClient(file, async (client) => {
    assert.equal(client.closed, false)
  })
  const broken = writeFile('broken.toml', '[cache]\nttl = "30s"\nmax_entrys = 5\n')
  assert.throws(() => new Client(broken), (error) => {
    assert.ok(error instanceof ConfigError)
    assert.ok(error.message.includes(broken), error.message)
    assert.match(error.message, /max_entrys/)
    return true
  })
})

test('config undefined reads KEYSTEAD_CONFIG', () => {
  const missing = path.join(folder, 'absent.toml')
  const restore = setEnvironment({ KEYSTEAD_CONFIG: missing })
  try {
    assert.throws(() => new Client(), (error) => {
      assert.ok(error instanceof ConfigError)
      assert.ok(error.message.includes(missing), error.message)
      return true
    })
  } finally {
    restore()
  }
})

test('get resolves a Secret with metadata', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_GET: 'get-value' })
  try {
    await withClient({}, async (client) => {
      const pending = client.get('env://KEYSTEAD_NODE_GET')
      assert.ok(pending instanceof Promise)
      const secret = await pending
      assert.ok(secret instanceof Secret)
      assert.equal(secret.reveal(), 'get-value')
      assert.deepEqual(secret.revealBuffer(), Buffer.from('get-value'))
      assert.equal(secret.reference, 'env://KEYSTEAD_NODE_GET')
      assert.equal(secret.provider, 'env')
      assert.equal(secret.name, 'KEYSTEAD_NODE_GET')
      assert.equal(secret.isBinary, false)
      assert.equal(secret.encoding, 'text')
      assert.equal(secret.fieldPath, undefined)
      assert.equal(secret.versionId, undefined)
      assert.deepEqual(secret.versionStages, [])
      assert.ok(secret.fetchedAt instanceof Date)
      assert.ok(Math.abs(secret.fetchedAt.getTime() - Date.now()) < 60_000)
    })
  } finally {
    restore()
  }
})

test('get of missing variable rejects with NotFoundError', async () => {
  await withClient({}, async (client) => {
    await assert.rejects(client.get('env://KEYSTEAD_NODE_NEVER_SET'), (error) => {
      assert.ok(error instanceof NotFoundError)
      assert.equal(error.code, 'ERR_KEYSTEAD_NOT_FOUND')
      assert.equal(error.errorClass, 'not-found')
      assert.equal(error.reference, 'env://KEYSTEAD_NODE_NEVER_SET')
      assert.equal(error.transient, false)
      return true
    })
  })
})

test('get with non-string reference rejects with TypeError', async () => {
  await withClient({}, async (client) => {
    const pending = client.get(42)
    assert.ok(pending instanceof Promise)
    await assert.rejects(pending, { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  })
})

test('wrong argument types are TypeErrors on every method', async () => {
  await withClient({}, async (client) => {
    const typeError = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }
    assert.throws(() => client.invalidate(null), typeError)
    assert.throws(() => client.cachedReader(null), typeError)
    assert.throws(() => client.subscribe(null, () => {}), typeError)
    assert.throws(() => client.subscribe('env://HOME', 5), typeError)
    await assert.rejects(client.refresh(null), typeError)
    await assert.rejects(client.prefetch('env://HOME'), typeError)
    await assert.rejects(client.prefetch(['env://HOME', null]), typeError)
  })
})

test('close rejects an invalid timeout', async () => {
  const client = new Client({})
  await assert.rejects(client.close({ timeout: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  await assert.rejects(client.close({ timeout: Number.NaN }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  await assert.rejects(client.close({ timeout: 'abc' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.equal(client.closed, false)
  await client.close({ timeout: 1000 })
  assert.equal(client.closed, true)
})

test('lone surrogate in a reference is an invalid reference', async () => {
  await withClient({}, async (client) => {
    await assert.rejects(client.get('env://A\udcff'), InvalidReferenceError)
    assert.throws(() => client.getCached('env://A\udcff'), InvalidReferenceError)
  })
})

test('getCached is synchronous and returns one object per value', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_CACHED: 'cached-value' })
  try {
    await withClient({}, async (client) => {
      assert.equal(client.getCached('env://KEYSTEAD_NODE_CACHED'), undefined)
      const loaded = await client.get('env://KEYSTEAD_NODE_CACHED')

      const first = client.getCached('env://KEYSTEAD_NODE_CACHED')
      assert.ok(first instanceof Secret)
      assert.equal(first.reveal(), 'cached-value')
      assert.equal(client.getCached('env://KEYSTEAD_NODE_CACHED'), first)
      assert.equal(await client.get('env://KEYSTEAD_NODE_CACHED'), first)
      assert.equal(loaded.reveal(), first.reveal())
    })
  } finally {
    restore()
  }
})

test('getCached of invalid or unknown reference is undefined', async () => {
  await withClient({}, async (client) => {
    assert.equal(client.getCached('no-scheme'), undefined)
    assert.equal(client.getCached('gopher://x'), undefined)
    assert.equal(client.getCached('env://KEYSTEAD_NODE_NEVER_SET'), undefined)
    assert.throws(() => client.getCached(42), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  })
})

test('getCached reads long references', async () => {
  const name = `KEYSTEAD_NODE_${'L'.repeat(600)}`
  const restore = setEnvironment({ [name]: 'long-name-value' })
  try {
    await withClient({}, async (client) => {
      await client.get(`env://${name}`)
      assert.equal(client.getCached(`env://${name}`).reveal(), 'long-name-value')
    })
  } finally {
    restore()
  }
})

test('cachedReader reads one reference', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_READER: 'reader-value' })
  try {
    await withClient({}, async (client) => {
      assert.equal(client.cachedReader('env://KEYSTEAD_NODE_READER'), undefined)
      await client.get('env://KEYSTEAD_NODE_READER')
      const read = client.cachedReader('env://KEYSTEAD_NODE_READER')
      assert.equal(typeof read, 'function')
      const first = read()
      assert.equal(first.reveal(), 'reader-value')
      assert.equal(read(), first)
      client.invalidate('env://KEYSTEAD_NODE_READER')
      assert.equal(read(), undefined)
      await client.get('env://KEYSTEAD_NODE_READER')
      assert.equal(read().reveal(), 'reader-value')
    })
  } finally {
    restore()
  }
})

test('invalidate drops the cached value', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_INVALIDATE: 'before' })
  try {
    await withClient({}, async (client) => {
      await client.get('env://KEYSTEAD_NODE_INVALIDATE')
      const before = client.getCached('env://KEYSTEAD_NODE_INVALIDATE')
      assert.equal(client.invalidate('env://KEYSTEAD_NODE_INVALIDATE'), true)
      assert.equal(client.getCached('env://KEYSTEAD_NODE_INVALIDATE'), undefined)
      assert.equal(client.invalidate('env://KEYSTEAD_NODE_INVALIDATE'), false)
      // A value handed out before stays readable.
      assert.equal(before.reveal(), 'before')

      process.env.KEYSTEAD_NODE_INVALIDATE = 'after'
      assert.equal((await client.get('env://KEYSTEAD_NODE_INVALIDATE')).reveal(), 'after')
      assert.equal(client.getCached('env://KEYSTEAD_NODE_INVALIDATE').reveal(), 'after')
      assert.throws(() => client.invalidate('not a reference'), InvalidReferenceError)
    })
  } finally {
    restore()
  }
})

test('refresh loads the new contents of a file', async () => {
  const file = writeFile('refresh.txt', 'first')
  await withClient({}, async (client) => {
    const first = await client.get(`file://${file}`)
    assert.equal(first.reveal(), 'first')
    fs.writeFileSync(file, 'second')
    const second = await client.refresh(`file://${file}`)
    assert.equal(second.reveal(), 'second')
    const cached = client.getCached(`file://${file}`)
    assert.notEqual(cached, first)
    assert.equal(cached.reveal(), 'second')
  })
})

test('concurrent gets of one reference share one load', async () => {
  const file = writeFile('shared.txt', 'shared')
  await withClient({}, async (client) => {
    const secrets = await Promise.all(Array.from({ length: 20 }, () => client.get(`file://${file}`)))
    assert.deepEqual(new Set(secrets.map((secret) => secret.reveal())), new Set(['shared']))
    const metrics = client.metrics()
    assert.equal(metrics.backendCalls, 1)
    assert.equal(metrics.entries, 1)
  })
})

test('field selection by reference and by method', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_JSON: '{"user":"app","port":5432,"tls":{"on":true}}' })
  try {
    await withClient({}, async (client) => {
      const user = await client.get('env://KEYSTEAD_NODE_JSON#user')
      assert.equal(user.reveal(), 'app')
      assert.equal(user.fieldPath, 'user')
      assert.equal(user.reference, 'env://KEYSTEAD_NODE_JSON')

      const whole = await client.get('env://KEYSTEAD_NODE_JSON')
      assert.equal(whole.field('port').reveal(), '5432')
      assert.equal(whole.field('tls').reveal(), '{"on":true}')
      assert.equal(whole.field('tls.on').reveal(), 'true')
      assert.equal(whole.field('tls.on').fieldPath, 'tls.on')
      assert.throws(() => whole.field('password'), (error) => {
        assert.ok(error instanceof FieldNotFoundError)
        assert.equal(error.code, 'ERR_KEYSTEAD_FIELD_NOT_FOUND')
        assert.equal(error.reference, 'env://KEYSTEAD_NODE_JSON')
        return true
      })
      assert.throws(() => user.field('x'), InvalidJsonError)
      assert.throws(() => whole.field(''), InvalidReferenceError)
    })
  } finally {
    restore()
  }
})

test('binary value reveals only as a Buffer', async () => {
  const bytes = Buffer.from([0x00, 0x9f, 0x92, 0x96, 0xff])
  const file = writeFile('binary.bin', bytes)
  await withClient({}, async (client) => {
    const secret = await client.get(`file://${file}`)
    assert.equal(secret.isBinary, true)
    assert.equal(secret.encoding, 'binary')
    assert.deepEqual(secret.revealBuffer(), bytes)
    assert.throws(() => secret.reveal(), (error) => {
      assert.ok(error instanceof NotTextError)
      assert.equal(error.code, 'ERR_KEYSTEAD_NOT_TEXT')
      return true
    })
  })
})

test('revealBuffer returns a fresh copy each call', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_BUFFER: 'wipe-me' })
  try {
    await withClient({}, async (client) => {
      const secret = await client.get('env://KEYSTEAD_NODE_BUFFER')
      const copy = secret.revealBuffer()
      copy.fill(0)
      assert.equal(secret.reveal(), 'wipe-me')
      assert.deepEqual(secret.revealBuffer(), Buffer.from('wipe-me'))
    })
  } finally {
    restore()
  }
})

test('prefetch reports one outcome per reference', async () => {
  const file = writeFile('prefetch.txt', 'prefetched')
  await withClient({}, async (client) => {
    const references = [`file://${file}`, 'env://KEYSTEAD_NODE_NEVER_SET', 'bad reference']
    const outcomes = await client.prefetch(references)
    assert.equal(outcomes.length, 3)
    assert.deepEqual(outcomes.map((outcome) => outcome.reference), references)
    assert.deepEqual(outcomes.map((outcome) => outcome.ok), [true, false, false])
    assert.equal(outcomes[0].error, undefined)
    assert.ok(outcomes[1].error instanceof NotFoundError)
    assert.ok(outcomes[2].error instanceof InvalidReferenceError)
    assert.equal(client.getCached(`file://${file}`).reveal(), 'prefetched')
  })
})

test('metrics count hits misses and errors', async () => {
  const file = writeFile('metrics.txt', 'counted')
  await withClient({}, async (client) => {
    await client.get(`file://${file}`)
    for (let i = 0; i < 5; i++) client.getCached(`file://${file}`)
    await client.get('env://KEYSTEAD_NODE_NEVER_SET').catch(() => {})

    const metrics = client.metrics()
    assert.equal(metrics.misses, 2)
    assert.equal(metrics.hits, 5)
    assert.equal(metrics.backendCalls, 2)
    assert.equal(metrics.entries, 2)
    assert.deepEqual(metrics.errors, { 'not-found': 1 })
    assert.equal(metrics.loadCount, 2)
    assert.equal(metrics.loadLatencyBuckets.reduce((sum, count) => sum + count, 0), 2)
    assert.ok(metrics.loadLatencySumMs >= 0)
  })
})

test('error classes have stable codes', () => {
  const expected = {
    InvalidReferenceError: 'ERR_KEYSTEAD_INVALID_REFERENCE',
    ConfigError: 'ERR_KEYSTEAD_CONFIG',
    NotFoundError: 'ERR_KEYSTEAD_NOT_FOUND',
    AccessDeniedError: 'ERR_KEYSTEAD_ACCESS_DENIED',
    SecretDeletedError: 'ERR_KEYSTEAD_SECRET_DELETED',
    DecryptionFailedError: 'ERR_KEYSTEAD_DECRYPTION_FAILED',
    UnavailableError: 'ERR_KEYSTEAD_UNAVAILABLE',
    NotTextError: 'ERR_KEYSTEAD_NOT_TEXT',
    FieldNotFoundError: 'ERR_KEYSTEAD_FIELD_NOT_FOUND',
    InvalidJsonError: 'ERR_KEYSTEAD_INVALID_JSON',
    ClosedError: 'ERR_KEYSTEAD_CLOSED',
    InternalError: 'ERR_KEYSTEAD_INTERNAL',
  }
  for (const [name, code] of Object.entries(expected)) {
    const ErrorType = keystead[name]
    assert.equal(typeof ErrorType, 'function', name)
    assert.equal(ErrorType.name, name)
    assert.equal(ErrorType.code, code)
    assert.ok(ErrorType.prototype instanceof KeysteadError, name)
  }
})

test('close rejects later calls with ClosedError', async () => {
  const restore = setEnvironment({ KEYSTEAD_NODE_CLOSE: 'value' })
  try {
    const client = new Client({})
    const secret = await client.get('env://KEYSTEAD_NODE_CLOSE')
    const closing = client.close()
    assert.equal(client.closed, true)
    assert.equal(client.getCached('env://KEYSTEAD_NODE_CLOSE'), undefined)
    await assert.rejects(client.get('env://KEYSTEAD_NODE_CLOSE'), (error) => {
      assert.ok(error instanceof ClosedError)
      assert.equal(error.code, 'ERR_KEYSTEAD_CLOSED')
      assert.equal(error.reference, 'env://KEYSTEAD_NODE_CLOSE')
      return true
    })
    await assert.rejects(client.refresh('env://KEYSTEAD_NODE_CLOSE'), ClosedError)
    await assert.rejects(client.prefetch(['env://KEYSTEAD_NODE_CLOSE']), ClosedError)
    assert.throws(() => client.subscribe('env://KEYSTEAD_NODE_CLOSE', () => {}), ClosedError)
    await closing
    await client.close({ timeout: 100 })
    // A secret handed out before close stays readable until dropped.
    assert.equal(secret.reveal(), 'value')
  } finally {
    restore()
  }
})

test('subscribe delivers each new version once', async () => {
  const file = writeFile('rotating.txt', 'v1')
  await withClient({ file: { ttl: '300ms' } }, async (client) => {
    const events = []
    const subscription = client.subscribe(`file://${file}`, (event) => events.push(event))
    assert.ok(subscription instanceof Subscription)
    assert.equal(subscription.active, true)

    // The subscription loads the value in the background; the first load
    // is not a rotation.
    await waitFor(() => client.getCached(`file://${file}`) !== undefined, 5000, 'the first load')
    await sleep(600)
    assert.equal(events.length, 0)

    fs.writeFileSync(file, 'v2')
    await waitFor(() => events.length === 1, 5000, 'the rotation to v2')
    const [event] = events
    assert.equal(event.reference, `file://${file}`)
    assert.equal(event.error, undefined)
    assert.equal(event.secret.reveal(), 'v2')

    // Unchanged contents are not a new version.
    await sleep(1000)
    assert.equal(events.length, 1)

    assert.equal(subscription.unsubscribe(), true)
    assert.equal(subscription.active, false)
    assert.equal(subscription.unsubscribe(), false)
    fs.writeFileSync(file, 'v3')
    await sleep(1000)
    assert.equal(events.length, 1)
  })
})

test('subscribe to a field reports a vanished field as an error', async () => {
  const file = writeFile('rotating.json', '{"user":"first"}')
  await withClient({ file: { ttl: '300ms' } }, async (client) => {
    const events = []
    client.subscribe(`file://${file}#user`, (event) => events.push(event))
    await waitFor(() => client.getCached(`file://${file}#user`) !== undefined, 5000, 'the first load')

    fs.writeFileSync(file, '{"user":"second"}')
    await waitFor(() => events.length === 1, 5000, 'the rotation to second')
    assert.equal(events[0].secret.reveal(), 'second')

    fs.writeFileSync(file, '{"other":1}')
    await waitFor(() => events.length === 2, 5000, 'the rotation without the field')
    assert.equal(events[1].secret, undefined)
    assert.ok(events[1].error instanceof FieldNotFoundError)
    assert.equal(events[1].error.code, 'ERR_KEYSTEAD_FIELD_NOT_FOUND')
  })
})

test('subscription survives losing its handle until close', async () => {
  const file = writeFile('kept.txt', 'k1')
  const client = new Client({ file: { ttl: '300ms' } })
  const events = []
  client.subscribe(`file://${file}`, (event) => events.push(event.secret.reveal()))
  await waitFor(() => client.getCached(`file://${file}`) !== undefined, 5000, 'the first load')
  if (global.gc) global.gc()
  fs.writeFileSync(file, 'k2')
  await waitFor(() => events.length === 1, 5000, 'the rotation to k2')
  assert.deepEqual(events, ['k2'])
  await client.close()
  fs.writeFileSync(file, 'k3')
  await sleep(1000)
  assert.deepEqual(events, ['k2'])
})

test('subscribe to invalid reference throws InvalidReferenceError', async () => {
  await withClient({}, async (client) => {
    assert.throws(() => client.subscribe('nope', () => {}), InvalidReferenceError)
  })
})

test('disposal symbols close and unsubscribe', { skip: typeof Symbol.asyncDispose !== 'symbol' }, async () => {
  const client = new Client({})
  const subscription = client.subscribe('env://KEYSTEAD_NODE_NEVER_SET', () => {})
  subscription[Symbol.dispose]()
  assert.equal(subscription.active, false)
  await client[Symbol.asyncDispose]()
  assert.equal(client.closed, true)
})
