//! Logging in to Vault and keeping the token alive.
//!
//! A [`Session`] keeps the current token and the login generation that
//! produced it. It logs in lazily on first use, renews the token in the
//! background at about two thirds of its remaining TTL, and logs in again
//! when the token can no longer be renewed, when it has expired, or when
//! the server rejects it. Leases live and die with the token that created
//! them, so the generation lets the provider tell a lease of an earlier
//! token from a current one.
//!
//! Races, and what happens:
//! * Concurrent callers that find no usable token share one login: the
//!   login lock is held across the login, and whoever gets it second finds
//!   the fresh token.
//! * Concurrent requests rejected with 403 under the same token run one
//!   validity check and at most one login; the others retry with the token
//!   it produced.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::error::{Error, ErrorClass};
use crate::provider::vault::http::{json_body, parse_json, Transport, VaultRequest, VaultResponse};

pub(crate) mod approle;
#[cfg(feature = "aws")]
pub(crate) mod aws;
pub(crate) mod jwt;
pub(crate) mod kubernetes;
pub(crate) mod token;

#[cfg(test)]
mod tests;

/// First delay after a failed login. Vault Agent's auto-auth starts at the
/// same second.
pub(crate) const LOGIN_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// Maximum delay between failed logins: Vault Agent's auto-auth maximum,
/// long enough not to hammer a struggling server, short enough to notice
/// recovery within minutes.
pub(crate) const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// First delay after a failed token renewal. The Vault Go client's lifetime
/// watcher uses the same ten seconds; the retry never goes past the point
/// where the session logs in again instead.
pub(crate) const RENEWAL_BACKOFF_MIN: Duration = Duration::from_secs(10);

/// Maximum delay between failed token renewals.
pub(crate) const RENEWAL_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The grace kept before a token's end is a random fraction between these
/// bounds of its TTL: the Vault Go client's lifetime watcher keeps ten
/// percent plus up to ten percent of jitter.
const GRACE_WINDOW: (f64, f64) = (0.1, 0.2);

/// A renewal must move the token's end at least this far to count as an
/// extension, because Vault reports TTLs in whole seconds.
const RENEWAL_MIN_GAIN: Duration = Duration::from_secs(1);

/// A Vault token and the login generation that produced it.
pub(crate) struct Token {
    pub(crate) secret: SecretString,
    /// Counts logins that produced a new token, from 1.
    pub(crate) generation: u64,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("generation", &self.generation)
            .field("secret", &format_args!("[REDACTED]"))
            .finish()
    }
}

/// The result of a login.
pub(crate) struct Login {
    pub(crate) token: SecretString,
    /// Time to live at login; zero means the token never expires.
    pub(crate) ttl: Duration,
    pub(crate) renewable: bool,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// One way of obtaining a token.
#[async_trait]
pub(crate) trait LoginMethod: Send + Sync + 'static {
    /// Returns the method's name as configured, for example `approle`.
    fn name(&self) -> &'static str;

    /// Obtains a token. Credentials (files, variables) are read again on
    /// every call.
    async fn login(&self, transport: &dyn Transport) -> Result<Login, Error>;
}

/// Counters and state of a session, for health checks and tests.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct VaultAuthStatus {
    /// The login method, for example `approle` or `token`.
    pub method: &'static str,
    /// Successful logins, including the first. A static token counts one
    /// when it is first checked and one each time it is read again.
    pub logins: u64,
    /// Successful token renewals.
    pub token_renewals: u64,
    /// Time left on the current token; `None` when there is no token yet or
    /// it never expires.
    pub token_remaining: Option<Duration>,
    /// Whether the current token has reached the end it can be renewed to,
    /// so the session logs in again before it ends.
    pub token_at_max_ttl: bool,
    /// The error of the last login when it failed, until a login succeeds.
    pub last_login_error: Option<Error>,
}

/// The current token and its schedule.
struct Current {
    token: Arc<Token>,
    /// `None` when the token never expires.
    expires_at: Option<Instant>,
    renewable: bool,
    /// The TTL asked for on renewal: the TTL the token had at login.
    increment: Duration,
    /// Margin kept before the end, drawn when the TTL last grew.
    grace: Duration,
    /// Longest TTL seen, to tell whether a renewal still extends.
    prior_ttl: Duration,
    /// Set once a renewal failed to extend the token: its end is fixed.
    at_max_ttl: bool,
    /// When the background task acts next (renews or logs in again).
    next_action_at: Option<Instant>,
    renewal_failures: u32,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    generation: u64,
    login_failures: u32,
    retry_login_at: Option<Instant>,
    last_login_error: Option<Error>,
    renewer_running: bool,
    logins: u64,
    renewals: u64,
}

/// The next job of the background task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Renew,
    LogIn,
}

/// The login state shared by every request of one provider.
pub(crate) struct Session {
    transport: Arc<dyn Transport>,
    method: Box<dyn LoginMethod>,
    clock: Arc<dyn Clock>,
    /// Uniform draws in `[0, 1)` for jitter; tests fix them.
    random: fn() -> f64,
    state: Mutex<State>,
    login_lock: tokio::sync::Mutex<()>,
    /// Dropped with the session, which stops the background task.
    stop: tokio::sync::watch::Sender<()>,
}

impl Session {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        method: Box<dyn LoginMethod>,
        clock: Arc<dyn Clock>,
        random: fn() -> f64,
    ) -> Arc<Session> {
        let (stop, _) = tokio::sync::watch::channel(());
        Arc::new(Session {
            transport,
            method,
            clock,
            random,
            state: Mutex::new(State::default()),
            login_lock: tokio::sync::Mutex::new(()),
            stop,
        })
    }

    pub(crate) fn transport(&self) -> &dyn Transport {
        &*self.transport
    }

    /// Returns a usable token, logging in when there is none.
    ///
    /// # Errors
    /// The login's error, or the last login's error while the login backoff
    /// runs.
    pub(crate) async fn token(self: &Arc<Session>) -> Result<Arc<Token>, Error> {
        if let Some(token) = self.usable_token()? {
            return Ok(token);
        }
        let _login = self.login_lock.lock().await;
        if let Some(token) = self.usable_token()? {
            return Ok(token);
        }
        self.log_in_locked().await
    }

    /// Handles a 403 received with `used`. Returns a new token to retry
    /// with once, or `None` when logging in again cannot help because the
    /// token is still valid and its policies deny the request.
    ///
    /// # Errors
    /// A transient failure of the validity check, or the failed login.
    pub(crate) async fn recover_from_forbidden(self: &Arc<Session>, used: &Token) -> Result<Option<Arc<Token>>, Error> {
        let _login = self.login_lock.lock().await;
        if let Some(current) = self.current_token() {
            if current.generation != used.generation {
                return Ok(Some(current));
            }
        }

        let lookup = self.look_up(&used.secret).await;
        match lookup {
            Ok(_) => Ok(None),
            Err(error) if error.class() == ErrorClass::AccessDenied => {
                tracing::info!(
                    method = self.method.name(),
                    generation = used.generation,
                    "Vault rejected the token; logging in again"
                );
                self.drop_token(used.generation);
                if let Some(retry_at) = self.state.lock().retry_login_at {
                    if self.clock.now() < retry_at {
                        return Err(self.backoff_error(retry_at));
                    }
                }
                let token = self.log_in_locked().await?;
                if token.secret.expose_secret() == used.secret.expose_secret() {
                    // A static token read again is the same token: logging
                    // in again did not cure anything.
                    return Ok(None);
                }
                Ok(Some(token))
            }
            Err(error) => Err(error),
        }
    }

    /// Returns the generation of the current token, 0 before the first login.
    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Returns how long a lease created under the current token can be
    /// relied on, because Vault revokes a token's leases when the token
    /// ends. For a token whose end is fixed (not renewable, or at its
    /// maximum TTL) that is the time to its end. For a token still being
    /// renewed it is the TTL each renewal grants: the lease is then checked
    /// again at least that often, and a check after the session had to log
    /// in again finds the lease gone. `None` for a token that never expires.
    pub(crate) fn token_horizon(&self) -> Option<Duration> {
        let now = self.clock.now();
        let state = self.state.lock();
        let current = state.current.as_ref()?;
        let end = current.expires_at?;
        let left = end.saturating_duration_since(now);
        if current.renewable && !current.at_max_ttl {
            return Some(left.max(current.increment));
        }
        Some(left)
    }

    /// Returns the time left on the current token when its end can no
    /// longer move (not renewable, or at its maximum TTL), else `None`.
    pub(crate) fn fixed_token_left(&self) -> Option<Duration> {
        let now = self.clock.now();
        let state = self.state.lock();
        let current = state.current.as_ref()?;
        if current.renewable && !current.at_max_ttl {
            return None;
        }
        current.expires_at.map(|end| end.saturating_duration_since(now))
    }

    pub(crate) fn status(&self) -> VaultAuthStatus {
        let now = self.clock.now();
        let state = self.state.lock();
        let current = state.current.as_ref();
        VaultAuthStatus {
            method: self.method.name(),
            logins: state.logins,
            token_renewals: state.renewals,
            token_remaining: current
                .and_then(|current| current.expires_at)
                .map(|end| end.saturating_duration_since(now)),
            token_at_max_ttl: current.is_some_and(|current| current.at_max_ttl),
            last_login_error: state.last_login_error.clone(),
        }
    }

    fn current_token(&self) -> Option<Arc<Token>> {
        self.state.lock().current.as_ref().map(|current| Arc::clone(&current.token))
    }

    fn usable_token(&self) -> Result<Option<Arc<Token>>, Error> {
        let now = self.clock.now();
        let state = self.state.lock();
        if let Some(current) = &state.current {
            if current.expires_at.is_none_or(|end| now < end) {
                return Ok(Some(Arc::clone(&current.token)));
            }
        }
        match state.retry_login_at {
            Some(retry_at) if now < retry_at => {
                drop(state);
                Err(self.backoff_error(retry_at))
            }
            _ => Ok(None),
        }
    }

    fn backoff_error(&self, retry_at: Instant) -> Error {
        let state = self.state.lock();
        let wait = retry_at.saturating_duration_since(self.clock.now());
        let (class, cause) = match &state.last_login_error {
            Some(error) => (error.class(), error.message().to_owned()),
            None => (ErrorClass::Unavailable, "unknown error".to_owned()),
        };
        Error::new(
            class,
            format!(
                "the last Vault login ({}) failed, next attempt in {} s: {cause}",
                self.method.name(),
                wait.as_secs_f64().ceil()
            ),
        )
    }

    fn drop_token(&self, generation: u64) {
        let mut state = self.state.lock();
        if state.current.as_ref().is_some_and(|current| current.token.generation == generation) {
            state.current = None;
        }
    }

    /// Logs in. The caller holds the login lock.
    async fn log_in_locked(self: &Arc<Session>) -> Result<Arc<Token>, Error> {
        let result = self.method.login(&*self.transport).await;
        let now = self.clock.now();
        let mut state = self.state.lock();
        match result {
            Ok(login) => {
                let same_token = state
                    .current
                    .as_ref()
                    .is_some_and(|current| current.token.secret.expose_secret() == login.token.expose_secret());
                if !same_token {
                    state.generation += 1;
                }
                state.login_failures = 0;
                state.retry_login_at = None;
                state.last_login_error = None;
                state.logins += 1;
                let generation = state.generation;
                let ttl = login.ttl;
                let renewable = login.renewable;
                let token = Arc::new(Token {
                    secret: login.token,
                    generation,
                });
                state.current = Some(Current::new(Arc::clone(&token), ttl, renewable, now, (self.random)()));
                drop(state);
                tracing::info!(
                    method = self.method.name(),
                    generation,
                    ttl_s = ttl.as_secs(),
                    renewable,
                    "logged in to Vault"
                );
                self.ensure_renewer();
                Ok(token)
            }
            Err(error) => {
                state.login_failures += 1;
                let delay = login_backoff(state.login_failures, (self.random)());
                state.retry_login_at = Some(now + delay);
                state.last_login_error = Some(error.clone());
                let failures = state.login_failures;
                drop(state);
                tracing::warn!(
                    method = self.method.name(),
                    failures,
                    retry_in_ms = delay.as_millis() as u64,
                    class = %error.class(),
                    error = error.message(),
                    "Vault login failed"
                );
                Err(Error::new(
                    error.class(),
                    format!("Vault login ({}) failed: {}", self.method.name(), error.message()),
                ))
            }
        }
    }

    /// Calls `auth/token/lookup-self` with `token`.
    async fn look_up(&self, token: &SecretString) -> Result<TokenInfo, Error> {
        let response = self
            .transport
            .send(VaultRequest::new(Method::GET, "auth/token/lookup-self").token(token))
            .await?;
        token_info(&response)
    }

    fn ensure_renewer(self: &Arc<Session>) {
        {
            let mut state = self.state.lock();
            let needs_renewer = state
                .current
                .as_ref()
                .is_some_and(|current| current.expires_at.is_some());
            if state.renewer_running || !needs_renewer {
                return;
            }
            state.renewer_running = true;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Every caller runs inside the client's runtime; without one
            // the token is still used, only not renewed ahead of time.
            self.state.lock().renewer_running = false;
            return;
        };
        let session = Arc::downgrade(self);
        let stop = self.stop.subscribe();
        runtime.spawn(run_renewer(session, stop));
    }

    /// Returns the next background action and when it is due, or `None` when the
    /// token needs no upkeep (which also ends the task).
    fn next_action(&self) -> Option<(Action, Instant)> {
        let mut state = self.state.lock();
        let retry_login_at = state.retry_login_at;
        let action = match &state.current {
            Some(current) => current.next_action(retry_login_at),
            None => None,
        };
        if action.is_none() {
            state.renewer_running = false;
        }
        action
    }

    async fn act(self: &Arc<Session>, action: Action) {
        match action {
            Action::Renew => self.renew_token().await,
            Action::LogIn => {
                let _login = self.login_lock.lock().await;
                let still_due = {
                    let state = self.state.lock();
                    let now = self.clock.now();
                    let retry_ok = state.retry_login_at.is_none_or(|retry_at| now >= retry_at);
                    let due = state
                        .current
                        .as_ref()
                        .and_then(|current| current.next_action(state.retry_login_at))
                        .is_some_and(|(action, at)| action == Action::LogIn && at <= now);
                    retry_ok && due
                };
                if still_due {
                    // The error is recorded in the state and logged.
                    let _ = self.log_in_locked().await;
                }
            }
        }
    }

    async fn renew_token(self: &Arc<Session>) {
        let Some((token, increment)) = ({
            let state = self.state.lock();
            state
                .current
                .as_ref()
                .map(|current| (Arc::clone(&current.token), current.increment))
        }) else {
            return;
        };

        let body = json_body(&RenewSelfBody {
            increment: increment.as_secs(),
        });
        let result = self
            .transport
            .send(
                VaultRequest::new(Method::POST, "auth/token/renew-self")
                    .token(&token.secret)
                    .body(&body),
            )
            .await
            .and_then(|response| renewal_result(&response));

        let now = self.clock.now();
        let draw = (self.random)();
        let mut state = self.state.lock();
        let Some(current) = state.current.as_mut().filter(|current| current.token.generation == token.generation) else {
            return;
        };
        match result {
            Ok((ttl, renewable)) => {
                current.renewed(ttl, renewable, now, draw);
                let at_max_ttl = current.at_max_ttl;
                state.renewals += 1;
                drop(state);
                tracing::info!(
                    method = self.method.name(),
                    generation = token.generation,
                    ttl_s = ttl.as_secs(),
                    at_max_ttl,
                    "renewed the Vault token"
                );
            }
            Err(error) if error.class() == ErrorClass::AccessDenied => {
                // Revoked or expired under us: only a login helps now.
                current.next_action_at = Some(now);
                current.renewable = false;
                current.expires_at = Some(now);
                drop(state);
                tracing::warn!(
                    method = self.method.name(),
                    generation = token.generation,
                    error = error.message(),
                    "Vault rejected the token renewal; logging in again"
                );
            }
            Err(error) => {
                current.renewal_failures += 1;
                let delay = renewal_backoff(current.renewal_failures, draw);
                let latest = current.login_at();
                current.next_action_at = Some(match latest {
                    Some(latest) => (now + delay).min(latest),
                    None => now + delay,
                });
                drop(state);
                tracing::warn!(
                    method = self.method.name(),
                    generation = token.generation,
                    class = %error.class(),
                    error = error.message(),
                    retry_in_s = delay.as_secs(),
                    "renewing the Vault token failed; will retry"
                );
            }
        }
    }
}

async fn run_renewer(session: Weak<Session>, mut stop: tokio::sync::watch::Receiver<()>) {
    loop {
        let (action, due, clock) = {
            let Some(session) = session.upgrade() else {
                return;
            };
            let Some((action, due)) = session.next_action() else {
                return;
            };
            (action, due, Arc::clone(&session.clock))
        };
        tokio::select! {
            () = clock.sleep_until(due) => {}
            _ = stop.changed() => return,
        }
        let Some(session) = session.upgrade() else {
            return;
        };
        session.act(action).await;
    }
}

impl Current {
    fn new(token: Arc<Token>, ttl: Duration, renewable: bool, now: Instant, draw: f64) -> Current {
        let mut current = Current {
            token,
            expires_at: None,
            renewable,
            increment: ttl,
            grace: Duration::ZERO,
            prior_ttl: ttl,
            at_max_ttl: false,
            next_action_at: None,
            renewal_failures: 0,
        };
        if !ttl.is_zero() {
            current.expires_at = Some(now + ttl);
            current.grace = grace_for(ttl, draw);
            current.next_action_at = Some(if renewable {
                now + renewal_delay(ttl, current.grace)
            } else {
                now + ttl.saturating_sub(current.grace)
            });
        }
        current
    }

    /// Applies a successful renewal that left `ttl` on the token.
    fn renewed(&mut self, ttl: Duration, renewable: bool, now: Instant, draw: f64) {
        let old_end = self.expires_at;
        let new_end = now + ttl;
        self.renewal_failures = 0;
        self.renewable = renewable;
        self.expires_at = Some(new_end);
        if old_end.is_some_and(|old_end| new_end < old_end + RENEWAL_MIN_GAIN) {
            self.at_max_ttl = true;
        }
        if ttl > self.prior_ttl {
            self.grace = grace_for(ttl, draw);
        }
        self.prior_ttl = self.prior_ttl.max(ttl);

        let sleep = renewal_delay(ttl, self.grace);
        // As in the Vault Go client's lifetime watcher: once the time left
        // after the next sleep would fall inside the grace, stop renewing
        // and log in again before the end instead.
        let within_grace = self.grace >= ttl || self.grace >= ttl.saturating_sub(sleep);
        if !renewable || within_grace {
            self.renewable = false;
            self.at_max_ttl = true;
            self.next_action_at = Some(new_end.checked_sub(self.grace).unwrap_or(now).max(now));
        } else {
            self.next_action_at = Some(now + sleep);
        }
    }

    /// When the session logs in again instead of renewing.
    fn login_at(&self) -> Option<Instant> {
        self.expires_at.map(|end| end.checked_sub(self.grace).unwrap_or(end))
    }

    fn next_action(&self, retry_login_at: Option<Instant>) -> Option<(Action, Instant)> {
        let due = self.next_action_at?;
        if self.renewable && self.login_at().is_none_or(|login_at| due < login_at) {
            return Some((Action::Renew, due));
        }
        let due = match retry_login_at {
            Some(retry_at) => due.max(retry_at),
            None => due,
        };
        Some((Action::LogIn, due))
    }
}

/// Computes the grace kept before the end of a TTL, for a uniform draw in
/// `[0, 1)`.
pub(crate) fn grace_for(ttl: Duration, draw: f64) -> Duration {
    let fraction = GRACE_WINDOW.0 + (GRACE_WINDOW.1 - GRACE_WINDOW.0) * draw.clamp(0.0, 1.0);
    ttl.mul_f64(fraction)
}

/// Computes the wait before renewing a TTL: two thirds of it plus a third of
/// the grace, as the Vault Go client's lifetime watcher does.
pub(crate) fn renewal_delay(ttl: Duration, grace: Duration) -> Duration {
    ttl.mul_f64(2.0 / 3.0) + grace / 3
}

/// Computes the delay before the next login after `failures` consecutive failed
/// logins: doubling from [`LOGIN_BACKOFF_MIN`], capped at
/// [`LOGIN_BACKOFF_MAX`], and jittered down by up to a quarter.
pub(crate) fn login_backoff(failures: u32, draw: f64) -> Duration {
    jittered_backoff(failures, draw, LOGIN_BACKOFF_MIN, LOGIN_BACKOFF_MAX)
}

/// Computes the delay before the next token renewal after `failures`
/// consecutive failures.
pub(crate) fn renewal_backoff(failures: u32, draw: f64) -> Duration {
    jittered_backoff(failures, draw, RENEWAL_BACKOFF_MIN, RENEWAL_BACKOFF_MAX)
}

fn jittered_backoff(failures: u32, draw: f64, min: Duration, max: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let ceiling = min.saturating_mul(1u32 << exponent).min(max);
    ceiling.mul_f64(0.75 + 0.25 * draw.clamp(0.0, 1.0)).max(min)
}

#[derive(serde::Serialize)]
struct RenewSelfBody {
    increment: u64,
}

/// The parts of `auth/token/lookup-self` the session uses.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenInfo {
    /// Seconds left; zero for a token that never expires.
    #[serde(default)]
    pub(crate) ttl: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
}

/// Reads a lookup-self response.
pub(crate) fn token_info(response: &VaultResponse) -> Result<TokenInfo, Error> {
    if !response.is_success() {
        return Err(response.error("looking up the Vault token (auth/token/lookup-self)"));
    }
    #[derive(Deserialize)]
    struct LookupBody {
        data: TokenInfo,
    }
    parse_json::<LookupBody>(&response.body, "auth/token/lookup-self").map(|body| body.data)
}

/// Reads the TTL and renewability from a renew-self response.
fn renewal_result(response: &VaultResponse) -> Result<(Duration, bool), Error> {
    if !response.is_success() {
        return Err(response.error("renewing the Vault token (auth/token/renew-self)"));
    }
    let envelope = response.envelope("auth/token/renew-self")?;
    let Some(auth) = envelope.auth else {
        return Err(Error::new(
            ErrorClass::Internal,
            "the auth/token/renew-self response from Vault has no auth block",
        ));
    };
    Ok((crate::provider::vault::backend_duration(auth.lease_duration), auth.renewable))
}

/// Reads the token from a login response.
pub(crate) fn login_result(response: &VaultResponse, what: &str) -> Result<Login, Error> {
    if !response.is_success() {
        // Vault returns 400 or 403 for a wrong secret id, role or JWT.
        let class = match response.status {
            400 | 401 | 403 | 404 => ErrorClass::AccessDenied,
            _ => response.error(what).class(),
        };
        return Err(response.error_with_class(class, what));
    }
    let envelope = response.envelope(what)?;
    let auth = envelope.auth.ok_or_else(|| {
        Error::new(ErrorClass::Internal, format!("the {what} response from Vault has no auth block"))
    })?;
    let token = auth
        .client_token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Error::new(ErrorClass::Internal, format!("the {what} response from Vault has no client token")))?;
    Ok(Login {
        token: SecretString::from(token.to_owned()),
        ttl: crate::provider::vault::backend_duration(auth.lease_duration),
        renewable: auth.renewable,
    })
}

/// Sends a login request with a JSON body to `auth/MOUNT/login`.
pub(crate) async fn post_login<T: serde::Serialize>(
    transport: &dyn Transport,
    mount: &str,
    body: &T,
    what: &str,
) -> Result<Login, Error> {
    let path = format!("auth/{}/login", encode_mount(mount));
    let body = json_body(body);
    let response = transport
        .send(VaultRequest::new(Method::POST, &path).body(&body))
        .await?;
    login_result(&response, what)
}

/// Percent-encodes a mount path for a URL, keeping its `/` separators.
pub(crate) fn encode_mount(mount: &str) -> String {
    crate::provider::vault::mount::encode_path(mount.trim_matches('/'))
}

/// Reads a credential file, trimming the trailing newline editors and
/// `echo` add.
pub(crate) fn read_credential_file(path: &std::path::Path, what: &str) -> Result<SecretString, Error> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
        Error::new(ErrorClass::Config, format!("cannot read the {what} file {}: {error}", path.display()))
    })?);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::new(ErrorClass::Config, format!("the {what} file {} is empty", path.display())));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

/// Reads a credential from an environment variable.
pub(crate) fn read_credential_env(name: &str, what: &str) -> Result<SecretString, Error> {
    let value = zeroize::Zeroizing::new(std::env::var(name).map_err(|_| {
        Error::new(ErrorClass::Config, format!("the {what} variable {name} is not set or not UTF-8"))
    })?);
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::new(ErrorClass::Config, format!("the {what} variable {name} is empty")));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}
