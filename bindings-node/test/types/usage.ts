// Type tests: compiled with `tsc --noEmit -p test/types` against the
// checked-in declarations. Lines marked @ts-expect-error must fail to
// compile; everything else must compile.

import {
  AccessDeniedError,
  Client,
  ClosedError,
  ConfigError,
  DecryptionFailedError,
  FieldNotFoundError,
  InternalError,
  InvalidJsonError,
  InvalidReferenceError,
  KeysteadError,
  NotFoundError,
  NotTextError,
  RotationEvent,
  Secret,
  SecretDeletedError,
  Subscription,
  UnavailableError,
} from 'keystead'
import type { CloseOptions, ErrorClass, Metrics, PrefetchOutcome, SecretJson } from 'keystead'

/** Compiles only when `Actual` and `Expected` are the same type. */
type Equal<Actual, Expected> =
  (<T>() => T extends Actual ? 1 : 2) extends <T>() => T extends Expected ? 1 : 2 ? true : false
function assertType<Condition extends true>(): Condition | void {}

async function usage(): Promise<void> {
  const fromEnvironment = new Client()
  const fromFile = new Client('/etc/keystead.toml')
  const fromObject = new Client({ cache: { ttl: '30s' }, aws: { region: 'eu-west-1' } })
  // @ts-expect-error a number is not a configuration
  new Client(42)

  const secret = await fromObject.get('aws-sm://prod/db#password')
  assertType<Equal<typeof secret, Secret>>()
  const text: string = secret.reveal()
  const bytes: Buffer = secret.revealBuffer()
  const field: Secret = secret.field('user')
  const versionId: string | undefined = secret.versionId
  const versionNumber: number | undefined = secret.versionNumber
  const stages: string[] = secret.versionStages
  const createdAt: Date | undefined = secret.createdAt
  const encoding: 'text' | 'binary' = secret.encoding
  const json: SecretJson = secret.toJSON()
  // @ts-expect-error the value is not a property
  secret.value

  const cached = fromObject.getCached('env://TOKEN')
  assertType<Equal<typeof cached, Secret | undefined>>()
  // @ts-expect-error getCached is synchronous, not a Promise
  cached?.then

  const reader = fromObject.cachedReader('env://TOKEN')
  assertType<Equal<typeof reader, (() => Secret | undefined) | undefined>>()

  const refreshed: Secret = await fromObject.refresh('env://TOKEN')
  const dropped: boolean = fromObject.invalidate('env://TOKEN')
  const outcomes: PrefetchOutcome[] = await fromObject.prefetch(['env://A', 'env://B'])
  for (const outcome of outcomes) {
    const ok: boolean = outcome.ok
    const error: Error | undefined = outcome.error
    void [ok, error]
  }
  const metrics: Metrics = fromObject.metrics()
  const hits: number = metrics.hits
  const errors: Record<string, number> = metrics.errors

  const subscription: Subscription = fromObject.subscribe('aws-sm://prod/db', (event: RotationEvent) => {
    const reference: string = event.reference
    const next: Secret | undefined = event.secret
    const problem: Error | undefined = event.error
    void [reference, next, problem]
  })
  const stopped: boolean = subscription.unsubscribe()
  const active: boolean = subscription.active
  // @ts-expect-error a listener receives one event
  fromObject.subscribe('env://A', (event: RotationEvent, extra: string) => {})

  const options: CloseOptions = { timeout: 1000 }
  await fromObject.close(options)
  await fromEnvironment.close()
  const closing: Promise<void> = fromFile.close()
  const closed: boolean = fromFile.closed

  try {
    await fromObject.get('env://MISSING')
  } catch (error) {
    if (error instanceof NotFoundError) {
      assertType<Equal<typeof error.code, 'ERR_KEYSTEAD_NOT_FOUND'>>()
      assertType<Equal<typeof error.errorClass, 'not-found'>>()
      const reference: string | undefined = error.reference
      const transient: boolean = error.transient
      void [reference, transient]
    }
    if (error instanceof KeysteadError) {
      const errorClass: ErrorClass = error.errorClass
      const code: string = error.code
      void [errorClass, code]
    }
  }

  const subclasses: Array<typeof KeysteadError> = [
    InvalidReferenceError,
    ConfigError,
    NotFoundError,
    AccessDeniedError,
    SecretDeletedError,
    DecryptionFailedError,
    UnavailableError,
    NotTextError,
    FieldNotFoundError,
    InvalidJsonError,
    ClosedError,
    InternalError,
  ]
  const unavailableCode: 'ERR_KEYSTEAD_UNAVAILABLE' = UnavailableError.code
  // @ts-expect-error the codes are distinct literal types
  const wrongCode: 'ERR_KEYSTEAD_NOT_FOUND' = ClosedError.code

  void [text, bytes, field, versionId, versionNumber, stages, createdAt, encoding, json, refreshed, dropped]
  void [hits, errors, stopped, active, closing, closed, subclasses, unavailableCode, wrongCode]
}

void usage
