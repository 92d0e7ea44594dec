//! A service that keeps a PostgreSQL connection pool working while Vault
//! rotates its database credentials.
//!
//! keystead reads `vault://database/creds/ROLE`, renews the lease in the
//! background, and fetches new credentials before the lease reaches its
//! maximum TTL. The service subscribes to that change: it opens a new pool
//! with the new username and password, switches queries to it, and lets the
//! old pool drain. A query in flight on the old pool finishes on it, because
//! Vault keeps the old credentials valid until their lease ends.
//!
//! Environment:
//! * `VAULT_ADDR`, `VAULT_TOKEN` (or a `[vault.auth]` method in the file
//!   named by `KEYSTEAD_CONFIG`);
//! * `KEYSTEAD_DB_REFERENCE`, default `vault://database/creds/app`;
//! * `PGHOST` (default `127.0.0.1`), `PGPORT` (default `5432`),
//!   `PGDATABASE` (default `postgres`);
//! * `KEYSTEAD_EXAMPLE_SECONDS`: how long to run, default 60.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keystead::{Client, Config, Secret};
use tokio::sync::{mpsc, RwLock};
use tokio_postgres::NoTls;

/// Connections per pool. Small, because the example runs one query a
/// second.
const POOL_SIZE: usize = 2;

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("vault-postgres-pool failed: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let reference = env_or("KEYSTEAD_DB_REFERENCE", "vault://database/creds/app");
    let seconds: u64 = env_or("KEYSTEAD_EXAMPLE_SECONDS", "60")
        .parse()
        .map_err(|_| "KEYSTEAD_EXAMPLE_SECONDS is not a whole number of seconds".to_owned())?;
    let target = Target {
        host: env_or("PGHOST", "127.0.0.1"),
        port: env_or("PGPORT", "5432")
            .parse()
            .map_err(|_| "PGPORT is not a port number".to_owned())?,
        database: env_or("PGDATABASE", "postgres"),
    };

    let config = Config::from_env().map_err(|error| error.to_string())?;
    let client = Client::builder().config(config).build().map_err(|error| error.to_string())?;

    let credentials = client.get(&reference).await.map_err(|error| error.to_string())?;
    let pool = Arc::new(RwLock::new(Arc::new(Pool::open(&target, &credentials).await?)));
    println!("pool opened as {}", pool.read().await.username);

    // The callback runs on a runtime worker and must return quickly, so it
    // only hands the new credentials to the task that rebuilds the pool.
    let (changes, mut changed) = mpsc::unbounded_channel::<Secret>();
    let _subscription = client
        .subscribe(&reference, move |event| match &event.secret {
            Ok(secret) => {
                let _ = changes.send(secret.clone());
            }
            Err(error) => eprintln!("new credentials arrived unusable: {error}"),
        })
        .map_err(|error| error.to_string())?;

    let rebuilt = Arc::clone(&pool);
    let rebuild_target = target.clone();
    tokio::spawn(async move {
        while let Some(credentials) = changed.recv().await {
            match Pool::open(&rebuild_target, &credentials).await {
                Ok(fresh) => {
                    let username = fresh.username.clone();
                    // Queries that already hold the old pool finish on it;
                    // it closes when the last of them lets go.
                    *rebuilt.write().await = Arc::new(fresh);
                    println!("credentials rotated; pool reopened as {username}");
                }
                Err(message) => eprintln!("cannot open a pool with the new credentials: {message}"),
            }
        }
    });

    for _ in 0..seconds {
        let current = Arc::clone(&*pool.read().await);
        match current.query_user().await {
            Ok(user) => println!("query ran as {user}"),
            Err(message) => eprintln!("query failed: {message}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Revokes the lease, so the database drops the user now instead of at
    // the end of its TTL.
    client.shutdown().await;
    Ok(())
}

#[derive(Clone)]
struct Target {
    host: String,
    port: u16,
    database: String,
}

/// A fixed set of connections opened with one set of credentials.
struct Pool {
    username: String,
    connections: Vec<tokio_postgres::Client>,
    next: AtomicUsize,
}

impl Pool {
    async fn open(target: &Target, credentials: &Secret) -> Result<Pool, String> {
        let username = field(credentials, "username")?;
        let password = credentials.field("password").map_err(|error| error.to_string())?;

        let mut connections = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            let mut config = tokio_postgres::Config::new();
            config
                .host(&target.host)
                .port(target.port)
                .dbname(&target.database)
                .user(&username)
                .password(password.expose_bytes())
                .connect_timeout(Duration::from_secs(5));
            let (connection_client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|error| format!("cannot connect as {username}: {error}"))?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    eprintln!("a pooled connection closed: {error}");
                }
            });
            connections.push(connection_client);
        }
        Ok(Pool {
            username,
            connections,
            next: AtomicUsize::new(0),
        })
    }

    async fn query_user(&self) -> Result<String, String> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let row = self.connections[index]
            .query_one("SELECT current_user::text", &[])
            .await
            .map_err(|error| error.to_string())?;
        Ok(row.get(0))
    }
}

fn field(secret: &Secret, name: &str) -> Result<String, String> {
    let selected = secret.field(name).map_err(|error| error.to_string())?;
    selected.expose_str().map(str::to_owned).map_err(|error| error.to_string())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
