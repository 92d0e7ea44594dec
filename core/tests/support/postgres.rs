//! A real PostgreSQL server for a test binary, started from Debian's
//! `postgresql` package on a free loopback port under a temporary folder,
//! and stopped when the test process exits.
//!
//! `initdb` refuses to run as root, so as root the server runs as the
//! `postgres` user (through `setpriv`, which execs instead of forking, so
//! that the supervising shell can stop the server by its pid).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the server may take to accept connections after `initdb`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The superuser password Vault's database engine connects with.
pub const SUPERUSER_PASSWORD: &str = "keystead-test-superuser";

/// A running server.
pub struct Postgres {
    /// The loopback port it listens on.
    pub port: u16,
    bin: PathBuf,
    _process: Mutex<Child>,
    _folder: PathBuf,
}

impl Postgres {
    /// Returns the server shared by every test in this binary, started on
    /// first use.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(start)
    }

    /// Returns the `connection_url` template for Vault's PostgreSQL plugin.
    pub fn vault_connection_url(&self) -> String {
        format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// Runs one SQL statement as `user` with `password` and returns the
    /// trimmed output, or the error text.
    pub fn query_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user, "-d", "postgres"])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|error| format!("cannot run psql: {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    /// Checks whether a role named `user` exists.
    pub fn role_exists(&self, user: &str) -> bool {
        let sql = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{}'", user.replace('\'', "''"));
        self.query_as("postgres", SUPERUSER_PASSWORD, &sql).as_deref() == Ok("1")
    }
}

fn start() -> Postgres {
    let bin = postgres_bin();
    let as_root = is_root();
    let folder = std::env::temp_dir().join(format!("keystead-pg-{}-{}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&folder).expect("a temporary folder for PostgreSQL");
    let data = folder.join("data");
    let password_file = folder.join("password");
    std::fs::write(&password_file, SUPERUSER_PASSWORD).expect("the password file is written");
    if as_root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&folder)
            .status()
            .expect("chown runs");
        assert!(status.success(), "cannot hand {} to the postgres user", folder.display());
    }

    let mut initdb = run_as_postgres(as_root, bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "scram-sha-256", "--no-sync", "--no-instructions"])
        .arg(format!("--pwfile={}", password_file.display()))
        .stdout(Stdio::null());
    let output = initdb.output().expect("initdb runs");
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let port = free_port();
    let log = folder.join("postgres.log");
    let mut server = run_as_postgres(as_root, bin.join("postgres"));
    server
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", folder.display()))
        .args(["-c", "fsync=off", "-c", "max_connections=50"]);
    // Stopped by the shell when this process's end closes the shell's
    // stdin; the shell then removes the data folder.
    let program = server.get_program().to_owned();
    let arguments: Vec<_> = server.get_args().map(ToOwned::to_owned).collect();
    let log_file = std::fs::File::create(&log).expect("a PostgreSQL log file");
    let process = Command::new("sh")
        .arg("-c")
        .arg(r#"exe="$1"; dir="$2"; shift 2; "$exe" "$@" & pid=$!; cat >/dev/null; kill -INT "$pid"; wait "$pid"; rm -rf "$dir""#)
        .arg("sh")
        .arg(program)
        .arg(&folder)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("the log file handle clones"))
        .stderr(log_file)
        .spawn()
        .expect("PostgreSQL starts");

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let postgres = Postgres {
        port,
        bin,
        _process: Mutex::new(process),
        _folder: folder,
    };
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && postgres.query_as("postgres", SUPERUSER_PASSWORD, "SELECT 1").as_deref() == Ok("1")
        {
            return postgres;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "PostgreSQL did not start on port {port}; its log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Builds a command that runs as the `postgres` user when this process is
/// root.
fn run_as_postgres(as_root: bool, program: PathBuf) -> Command {
    if as_root {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Finds the newest `/usr/lib/postgresql/*/bin`.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|bin| bin.join("initdb").exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed under /usr/lib/postgresql; run scripts/setup.sh (Debian package `postgresql`)")
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("the listener has an address").port()
}
