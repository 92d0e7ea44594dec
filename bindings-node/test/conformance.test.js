'use strict'

// Runs every case in conformance/cases.json, the file the Rust, Python and
// Go suites run too. A case that needs a backend this suite does not start
// fails, unless KEYSTEAD_TEST_SKIP_BACKENDS names that backend (a
// comma-separated list such as "vault", the variable the Python suite
// reads too).

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { after, before, test } = require('node:test')

const { Client, KeysteadError } = require('./support/keystead')
const { startBao } = require('./support/bao')
const { setEnvironment, startMoto } = require('./support/moto')

const CASES_FILE = path.resolve(__dirname, '..', '..', 'conformance', 'cases.json')
const document = JSON.parse(fs.readFileSync(CASES_FILE, 'utf8'))

// The `given` keys this runner can arrange, by the backend they need.
const BACKEND_OF_KEY = {
  env: 'env',
  files: 'file',
  aws_secrets: 'aws',
  aws_parameters: 'aws',
  vault_kv: 'vault',
}
const SUPPORTED_BACKENDS = new Set(['env', 'file', 'aws', 'vault'])
const SKIPPED_BACKENDS = new Set(
  (process.env.KEYSTEAD_TEST_SKIP_BACKENDS ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean),
)

function needsBackend(backend) {
  return !SKIPPED_BACKENDS.has(backend) &&
    document.cases.some((testCase) => Object.keys(testCase.given ?? {}).some((key) => BACKEND_OF_KEY[key] === backend))
}

let moto
let bao
let restoreAwsEnvironment = () => {}

before(async () => {
  if (needsBackend('aws')) {
    moto = await startMoto()
    restoreAwsEnvironment = setEnvironment(moto.environment())
  }
  if (needsBackend('vault')) bao = await startBao()
})

after(async () => {
  restoreAwsEnvironment()
  await moto?.stop()
  await bao?.stop()
})

/** Replaces `{dir}` and `{prefix}` in every string (and key) of `value`. */
function expand(value, dir, prefix) {
  if (typeof value === 'string') return value.replaceAll('{dir}', dir).replaceAll('{prefix}', prefix)
  if (Array.isArray(value)) return value.map((item) => expand(item, dir, prefix))
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [expand(key, dir, prefix), expand(item, dir, prefix)]),
    )
  }
  return value
}

/**
 * Lists the entries of an `aws_secrets` or `aws_parameters` value. The case
 * file format writes a list of objects with a `name`; a map from name to
 * entry is accepted too.
 */
function entriesOf(value, key) {
  if (Array.isArray(value)) return value
  if (value && typeof value === 'object') {
    return Object.entries(value).map(([name, entry]) =>
      typeof entry === 'string' ? { name, string: entry } : { name, ...entry },
    )
  }
  throw new Error(`\`${key}\` must be a list`)
}

async function arrangeSecret(entry) {
  const request = { Name: entry.name }
  const text = entry.string ?? entry.text
  const binary = entry.binary_base64 ?? entry.bytes_base64
  if (typeof text === 'string') request.SecretString = text
  else if (typeof binary === 'string') request.SecretBinary = binary
  else throw new Error(`secret ${entry.name}: expected \`string\` or \`binary_base64\``)
  await moto.secretsManager('CreateSecret', request)

  for (const later of entry.then ?? []) {
    const version = { SecretId: entry.name }
    if (typeof later.string === 'string') version.SecretString = later.string
    else if (typeof later.binary_base64 === 'string') version.SecretBinary = later.binary_base64
    else throw new Error(`secret ${entry.name}: every \`then\` entry needs \`string\` or \`binary_base64\``)
    await moto.secretsManager('PutSecretValue', version)
  }
  if (entry.deleted === true) {
    await moto.secretsManager('DeleteSecret', { SecretId: entry.name, RecoveryWindowInDays: 7 })
  }
}

async function arrangeParameter(entry) {
  if (typeof entry.value !== 'string') throw new Error(`parameter ${entry.name}: expected \`value\``)
  const type = entry.type ?? 'String'
  await moto.ssm('PutParameter', { Name: entry.name, Value: entry.value, Type: type, Overwrite: true })
  for (const later of entry.versions ?? []) {
    await moto.ssm('PutParameter', { Name: entry.name, Value: later, Type: type, Overwrite: true })
  }
  for (const [label, version] of Object.entries(entry.labels ?? {})) {
    await moto.ssm('LabelParameterVersion', { Name: entry.name, ParameterVersion: version, Labels: [label] })
  }
}

async function arrangeVaultSecret(entry) {
  for (const data of [entry.data, ...(entry.then ?? [])]) {
    await bao.writeKv(entry.mount, entry.path, data)
  }
  if (entry.delete_latest === true) await bao.deleteLatestKv(entry.mount, entry.path)
}

/** Puts the backend state `given` describes in place; returns a function undoing the environment changes. */
async function arrange(given, dir) {
  const restores = []
  for (const [key, value] of Object.entries(given)) {
    switch (key) {
      case 'env':
        restores.push(setEnvironment(value))
        break
      case 'files':
        for (const [name, text] of Object.entries(value)) {
          fs.writeFileSync(path.join(dir, name), text)
        }
        break
      case 'aws_secrets':
        for (const entry of entriesOf(value, key)) await arrangeSecret(entry)
        break
      case 'aws_parameters':
        for (const entry of entriesOf(value, key)) await arrangeParameter(entry)
        break
      case 'vault_kv':
        for (const entry of value) await arrangeVaultSecret(entry)
        break
      default:
        throw new Error(`unsupported \`given\` key \`${key}\``)
    }
  }
  return () => restores.reverse().forEach((restore) => restore())
}

function backendsOf(testCase) {
  return Object.keys(testCase.given ?? {}).map((key) => BACKEND_OF_KEY[key] ?? `unknown key ${key}`)
}

test('case file lists uniquely named cases', () => {
  assert.equal(document.version, 1)
  assert.ok(document.cases.length > 0)
  const names = document.cases.map((testCase) => testCase.name)
  assert.equal(new Set(names).size, names.length)
})

for (const raw of document.cases) {
  const backends = backendsOf(raw)
  const skipped = backends.find((backend) => SKIPPED_BACKENDS.has(backend))
  const options = skipped ? { skip: `backend ${skipped} left out by KEYSTEAD_TEST_SKIP_BACKENDS` } : {}

  test(`conformance: ${raw.name}`, options, async () => {
    const unsupported = backends.filter((backend) => !SUPPORTED_BACKENDS.has(backend))
    assert.deepEqual(unsupported, [], `this suite does not start the backends ${unsupported.join(', ')}`)

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keystead-node-conformance-'))
    const prefix = `node-${crypto.randomUUID()}`
    const testCase = expand(raw, dir, prefix)
    const restore = await arrange(testCase.given ?? {}, dir)
    // An object, not undefined, so that a KEYSTEAD_CONFIG in the caller's
    // environment cannot change the result.
    const client = new Client(bao ? { vault: { address: bao.address, token: bao.token } } : {})
    try {
      const expected = testCase.expect
      if ('error' in expected) {
        await assert.rejects(client.get(testCase.reference), (error) => {
          assert.ok(error instanceof KeysteadError, `expected a KeysteadError, got ${error}`)
          assert.equal(error.errorClass, expected.error, error.message)
          return true
        })
      } else if ('bytes_base64' in expected) {
        const secret = await client.get(testCase.reference)
        assert.equal(secret.isBinary, true)
        assert.equal(secret.revealBuffer().toString('base64'), expected.bytes_base64)
      } else if ('text' in expected) {
        const secret = await client.get(testCase.reference)
        assert.equal(secret.reveal(), expected.text)
      } else {
        assert.fail(`case ${raw.name} expects none of text, bytes_base64 and error`)
      }
    } finally {
      await client.close()
      restore()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}
