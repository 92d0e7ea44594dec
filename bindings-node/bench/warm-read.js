'use strict'

// Warm-read benchmark: the cost of reading a secret that is already cached,
// next to a plain JavaScript Map lookup measured in the same run as the
// floor.
//
//   npm run build && node bench/warm-read.js [--rounds N] [--json]
//
// Each case runs ROUND_OPERATIONS operations per round, and the report
// gives the median round in nanoseconds per operation. Each keystead case
// is also given as a ratio to its floor: the synchronous Map lookup for
// the synchronous reads, and `await` of a Map lookup for `await get`.

const { parseArgs } = require('node:util')

const { Client } = require('..')

const { values: options } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    json: { type: 'boolean', default: false },
  },
})
const ROUNDS = Number(options.rounds)
const ROUND_OPERATIONS = 200_000
const WARMUP_OPERATIONS = 500_000

const REFERENCE = 'env://KEYSTEAD_BENCH_TOKEN'
process.env.KEYSTEAD_BENCH_TOKEN = 'bench-token-0123456789abcdef0123'

// Results go to a global so that no loop body can be dropped as dead code.
let sink

function median(samples) {
  const sorted = [...samples].sort((left, right) => left - right)
  return sorted[Math.floor(sorted.length / 2)]
}

// Each case has its own loop rather than one loop calling a closure, so
// that V8 optimizes every loop for its one call and no case pays for a
// call site shared with the others.
function timeRounds(runRound) {
  runRound(WARMUP_OPERATIONS)
  const samples = []
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint()
    runRound(ROUND_OPERATIONS)
    samples.push(Number(process.hrtime.bigint() - started) / ROUND_OPERATIONS)
  }
  return median(samples)
}

async function timeRoundsAsync(runRound) {
  await runRound(WARMUP_OPERATIONS / 10)
  const samples = []
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint()
    await runRound(ROUND_OPERATIONS)
    samples.push(Number(process.hrtime.bigint() - started) / ROUND_OPERATIONS)
  }
  return median(samples)
}

async function main() {
  const client = new Client({})
  const loaded = await client.get(REFERENCE)
  if (loaded.reveal() !== process.env.KEYSTEAD_BENCH_TOKEN) throw new Error('the benchmark secret did not load')

  // The Map maps the same key string to an object, as the cache maps it
  // to a Secret.
  const map = new Map([[REFERENCE, { value: process.env.KEYSTEAD_BENCH_TOKEN }]])
  for (let i = 0; i < 100; i++) map.set(`env://OTHER_${i}`, { value: String(i) })
  const read = client.cachedReader(REFERENCE)

  const results = {}
  results.mapGet = timeRounds((count) => {
    for (let i = 0; i < count; i++) sink = map.get(REFERENCE)
  })
  results.getCached = timeRounds((count) => {
    for (let i = 0; i < count; i++) sink = client.getCached(REFERENCE)
  })
  results.cachedReader = timeRounds((count) => {
    for (let i = 0; i < count; i++) sink = read()
  })
  results.awaitMapGet = await timeRoundsAsync(async (count) => {
    for (let i = 0; i < count; i++) sink = await map.get(REFERENCE)
  })
  results.awaitGet = await timeRoundsAsync(async (count) => {
    for (let i = 0; i < count; i++) sink = await client.get(REFERENCE)
  })
  if (!(sink instanceof Object)) throw new Error('the benchmark read nothing')

  const metrics = client.metrics()
  await client.close()

  const rows = [
    ['Map.get (floor)', results.mapGet, 1],
    ['client.getCached(ref)', results.getCached, results.getCached / results.mapGet],
    ['client.cachedReader(ref)()', results.cachedReader, results.cachedReader / results.mapGet],
    ['await Map.get (async floor)', results.awaitMapGet, 1],
    ['await client.get(ref)', results.awaitGet, results.awaitGet / results.awaitMapGet],
  ]

  if (options.json) {
    console.log(JSON.stringify({ node: process.version, rounds: ROUNDS, roundOperations: ROUND_OPERATIONS, results, hits: metrics.hits }))
    return
  }
  console.log(`node ${process.version}, ${ROUNDS} rounds of ${ROUND_OPERATIONS} reads, median ns per read`)
  for (const [name, nanoseconds, ratio] of rows) {
    console.log(`${name.padEnd(30)} ${nanoseconds.toFixed(1).padStart(8)} ns  ${ratio.toFixed(1).padStart(5)}x`)
  }
  console.log(`cache hits counted by core: ${metrics.hits}`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
