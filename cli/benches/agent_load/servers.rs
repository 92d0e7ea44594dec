//! The processes under measurement: moto, `keystead agent` and the AWS
//! Secrets Manager Agent, all on loopback.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::http::{aws_json_request, get_request, Connection};

/// The SSRF token both agents are started with.
pub const TOKEN: &str = "bench-token-4e2a";

/// How long a server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct Moto {
    _child: Child,
    pub endpoint: String,
    address: SocketAddr,
}

impl Moto {
    pub async fn start(root: &Path) -> Moto {
        let binary = root.join(".venv/bin/moto_server");
        assert!(binary.exists(), "{} is missing; run `bash scripts/setup.sh`", binary.display());
        let address = free_address();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &address.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server starts");
        wait_for_listener(address).await;
        Moto {
            _child: child,
            endpoint: format!("http://{address}"),
            address,
        }
    }

    pub async fn call(&self, target: &str, body: &str) -> String {
        // moto closes the connection after every response.
        let mut connection = Connection::open(self.address).await.expect("moto accepts");
        let answer = connection.fetch(&aws_json_request(target, body)).await.expect("moto responds");
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, 200, "{target}: {text}");
        text
    }
}

/// Agent implementation of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keystead,
    AwsAgent,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Keystead => "keystead agent",
            Kind::AwsAgent => "AWS Secrets Manager Agent 2.1.0",
        }
    }
}

/// A running agent.
pub struct Agent {
    child: Child,
    pub address: SocketAddr,
    _folder: tempfile::TempDir,
}

/// Paths of the two agent binaries.
#[derive(Clone)]
pub struct Binaries {
    pub keystead: PathBuf,
    pub aws_agent: PathBuf,
}

impl Agent {
    /// Starts an agent and returns once its port accepts connections, with
    /// the time that took.
    pub async fn start(kind: Kind, binaries: &Binaries, moto: &Moto) -> (Agent, Instant) {
        let folder = tempfile::tempdir().unwrap();
        let address = free_address();
        let mut command = match kind {
            Kind::Keystead => {
                let mut command = Command::new(&binaries.keystead);
                command.args(["agent", "--listen", &address.to_string()]).env("KEYSTEAD_LOG", "error");
                command
            }
            Kind::AwsAgent => {
                // TTL and cache size are the agent's defaults, written out.
                // Credential validation (an STS call at start) is off, so
                // that both agents start the same way.
                let config = folder.path().join("agent.toml");
                std::fs::write(
                    &config,
                    format!(
                        "log_level = \"ERROR\"\nlog_to_file = false\nhttp_port = \"{}\"\nttl_seconds = \"300\"\n\
                         cache_size = \"1000\"\nvalidate_credentials = false\nregion = \"us-east-1\"\n",
                        address.port()
                    ),
                )
                .unwrap();
                let mut command = Command::new(&binaries.aws_agent);
                command.arg("--config").arg(&config);
                command
            }
        };
        command
            .current_dir(folder.path())
            .env("AWS_TOKEN", TOKEN)
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command.spawn().unwrap_or_else(|error| panic!("{} starts: {error}", kind.label()));
        (
            Agent {
                child,
                address,
                _folder: folder,
            },
            started,
        )
    }

    /// Polls the secret until it gets status 200; returns when it first did.
    pub async fn first_answer(&self, path: &str) -> Instant {
        let request = get_request(path, TOKEN);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(mut connection) = Connection::open(self.address).await {
                if let Ok((200, _)) = connection.round_trip(&request).await {
                    return Instant::now();
                }
            }
            assert!(Instant::now() < deadline, "no answer from {} within {START_DEADLINE:?}", self.address);
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn wait_for_listener(address: SocketAddr) {
    let deadline = Instant::now() + START_DEADLINE;
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
