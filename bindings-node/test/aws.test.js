'use strict'

// Reads from AWS Secrets Manager and SSM Parameter Store as emulated by a
// moto server this file starts on loopback.

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { after, before, test } = require('node:test')

const { Client, NotFoundError, SecretDeletedError, UnavailableError } = require('./support/keystead')
const { setEnvironment, startMoto } = require('./support/moto')

let moto
let restoreEnvironment = () => {}
const prefix = `node-aws-${crypto.randomUUID()}`

before(async () => {
  moto = await startMoto()
  restoreEnvironment = setEnvironment(moto.environment())
})

after(async () => {
  restoreEnvironment()
  await moto?.stop()
})

async function withClient(config, body) {
  const client = new Client(config)
  try {
    return await body(client)
  } finally {
    await client.close()
  }
}

test('secrets manager secret carries AWS metadata', async () => {
  const name = `${prefix}/metadata`
  const created = await moto.secretsManager('CreateSecret', { Name: name, SecretString: 'sm-value' })
  await withClient({}, async (client) => {
    const secret = await client.get(`aws-sm://${name}`)
    assert.equal(secret.reveal(), 'sm-value')
    assert.equal(secret.provider, 'aws-sm')
    assert.equal(secret.name, name)
    assert.equal(secret.arn, created.ARN)
    assert.equal(secret.versionId, created.VersionId)
    assert.ok(secret.versionStages.includes('AWSCURRENT'), String(secret.versionStages))
    assert.ok(secret.createdAt instanceof Date)
  })
})

test('secrets manager binary secret keeps exact bytes', async () => {
  const name = `${prefix}/binary`
  const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f])
  await moto.secretsManager('CreateSecret', { Name: name, SecretBinary: bytes.toString('base64') })
  await withClient({}, async (client) => {
    const secret = await client.get(`aws-sm://${name}`)
    assert.equal(secret.isBinary, true)
    assert.deepEqual(secret.revealBuffer(), bytes)
  })
})

test('refresh after rotation notifies the subscriber once', async () => {
  const name = `${prefix}/rotating`
  await moto.secretsManager('CreateSecret', { Name: name, SecretString: '{"password":"one"}' })
  await withClient({}, async (client) => {
    const reference = `aws-sm://${name}#password`
    const first = await client.get(reference)
    assert.equal(first.reveal(), 'one')

    const events = []
    const subscription = client.subscribe(reference, (event) => events.push(event))
    const rotated = await moto.secretsManager('PutSecretValue', { SecretId: name, SecretString: '{"password":"two"}' })

    const second = await client.refresh(reference)
    assert.equal(second.reveal(), 'two')
    assert.equal(second.versionId, rotated.VersionId)
    assert.notEqual(second.versionId, first.versionId)

    const deadline = Date.now() + 5000
    while (events.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(events.length, 1)
    assert.equal(events[0].secret.reveal(), 'two')
    assert.equal(events[0].secret.versionId, rotated.VersionId)

    // Refreshing again without a new version is not a rotation.
    await client.refresh(reference)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(events.length, 1)
    subscription.unsubscribe()
  })
})

test('ssm parameter reports its version number', async () => {
  const name = `/${prefix}/parameter`
  await moto.ssm('PutParameter', { Name: name, Value: 'p1', Type: 'SecureString' })
  await withClient({}, async (client) => {
    const first = await client.get(`aws-ssm://${name}`)
    assert.equal(first.reveal(), 'p1')
    assert.equal(first.provider, 'aws-ssm')
    assert.equal(first.versionNumber, 1)

    await moto.ssm('PutParameter', { Name: name, Value: 'p2', Type: 'SecureString', Overwrite: true })
    const second = await client.refresh(`aws-ssm://${name}`)
    assert.equal(second.reveal(), 'p2')
    assert.equal(second.versionNumber, 2)
  })
})

test('missing and deleted secrets reject with their classes', async () => {
  const deleted = `${prefix}/deleted`
  await moto.secretsManager('CreateSecret', { Name: deleted, SecretString: 'old' })
  await moto.secretsManager('DeleteSecret', { SecretId: deleted, RecoveryWindowInDays: 7 })
  await withClient({}, async (client) => {
    await assert.rejects(client.get(`aws-sm://${prefix}/absent`), (error) => {
      assert.ok(error instanceof NotFoundError)
      assert.equal(error.reference, `aws-sm://${prefix}/absent`)
      return true
    })
    await assert.rejects(client.get(`aws-sm://${deleted}`), SecretDeletedError)
    await assert.rejects(client.get(`aws-ssm:///${prefix}/absent`), NotFoundError)
  })
})

test('prefetch loads several secrets at once', async () => {
  const names = ['a', 'b', 'c'].map((suffix) => `${prefix}/batch-${suffix}`)
  for (const name of names) await moto.secretsManager('CreateSecret', { Name: name, SecretString: `value-${name}` })
  await withClient({}, async (client) => {
    const references = names.map((name) => `aws-sm://${name}`)
    const outcomes = await client.prefetch(references)
    assert.deepEqual(outcomes.map((outcome) => outcome.ok), [true, true, true])
    for (const name of names) {
      assert.equal(client.getCached(`aws-sm://${name}`).reveal(), `value-${name}`)
    }
  })
})

test('unreachable endpoint rejects with transient UnavailableError', async () => {
  // A port that was free a moment ago: connections are refused.
  const net = require('node:net')
  const port = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address()
      server.close(() => resolve(free))
    })
  })
  const config = { aws: { endpoint_url: `http://127.0.0.1:${port}`, max_attempts: 1, connect_timeout: '1s' } }
  await withClient(config, async (client) => {
    await assert.rejects(client.get(`aws-sm://${prefix}/unreachable`), (error) => {
      assert.ok(error instanceof UnavailableError)
      assert.equal(error.code, 'ERR_KEYSTEAD_UNAVAILABLE')
      assert.equal(error.transient, true)
      return true
    })
  })
})
