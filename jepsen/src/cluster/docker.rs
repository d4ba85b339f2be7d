//! The compose cluster (`docker-compose.yml`) as a harness backend: docker kill/start, pause/unpause, iptables partitions, docker logs.
//!
//! Everything goes through the docker CLI (`std::process::Command`), so the
//! backend needs no client library and works with whichever compose exists
//! (`docker compose` or `docker-compose`). Containers are found by their
//! compose labels, never by name, since the two composes name them
//! differently.
//!
//! A partition is a chain of DROP rules, [`CHAIN`], in each container's own
//! network namespace, entered from the host with `nsenter -t <pid> -n` (the
//! image has no tools of its own). The backend receives the cut links
//! ([`Partition`]), not groups, so non-transitive partitions such as a bridge
//! work: each node drops everything from and to exactly the peers across its
//! own cut links (both ends of a link carry rules, so the link stays cut in
//! both directions even while one end restarts). The rules name only the
//! containers' fixed addresses on the compose network, so clients reaching
//! the published ports are never cut off. Healing removes the chain and the
//! jumps to it, nothing else. A container that is started again gets a
//! fresh namespace, so [`Cluster::start`] puts the current partition's rules
//! back into it (the node may exchange a few packets with its peers before
//! they are in place).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{ClientTls, Cluster, Endpoint, Partition};
use crate::Error;

/// The iptables chain holding a container's partition rules.
pub const CHAIN: &str = "RAFTLIMIT-PARTITION";

/// Which compose project to drive and how it is configured. The defaults
/// match `docker-compose.yml` without any environment overrides.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// Compose project name (`-p`); distinct projects never share
    /// containers, networks or volumes.
    pub project: String,
    /// The compose file.
    pub compose_file: PathBuf,
    /// The deploy directory: `tls/ca.crt`, `tls/client.{crt,key}` and
    /// `secrets/password` (scripts/deploy-files.sh).
    pub deploy_dir: PathBuf,
    /// Host port publishing node `i + 1`'s RESP (TLS) port.
    pub resp_ports: Vec<u16>,
    /// Host port publishing node `i + 1`'s HTTP port.
    pub http_ports: Vec<u16>,
    /// First three octets of the compose network's /24; node `N` is `.1N`.
    pub net: [u8; 3],
    /// Node configs naming that network (`RAFTLIMIT_CONFIG_DIR`); `None`
    /// for the compose file's default, `config/docker`.
    pub config_dir: Option<PathBuf>,
    /// The node image (`RAFTLIMIT_IMAGE`); `None` for `raftlimit:latest`.
    pub image: Option<String>,
    /// How long [`DockerCluster::up`] waits for every container to be healthy.
    pub ready_timeout: Duration,
}

impl DockerOptions {
    /// The project `docker compose up` starts in the repository at `root`:
    /// RESP on 7001-7003, HTTP on 9001-9003, network 172.28.0.0/24.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            project: default_project(&root),
            compose_file: root.join("docker-compose.yml"),
            deploy_dir: root.join("deploy"),
            resp_ports: vec![7001, 7002, 7003],
            http_ports: vec![9001, 9002, 9003],
            net: [172, 28, 0],
            config_dir: None,
            image: None,
            ready_timeout: Duration::from_secs(90),
        }
    }

    /// The environment that makes the compose file use these settings.
    fn compose_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for (i, port) in self.resp_ports.iter().enumerate() {
            env.push((format!("RAFTLIMIT_RESP_PORT_{}", i + 1), port.to_string()));
        }
        for (i, port) in self.http_ports.iter().enumerate() {
            env.push((format!("RAFTLIMIT_HTTP_PORT_{}", i + 1), port.to_string()));
        }
        let [a, b, c] = self.net;
        env.push(("RAFTLIMIT_NET".into(), format!("{a}.{b}.{c}")));
        if let Some(dir) = &self.config_dir {
            env.push(("RAFTLIMIT_CONFIG_DIR".into(), dir.display().to_string()));
        }
        if let Some(image) = &self.image {
            env.push(("RAFTLIMIT_IMAGE".into(), image.clone()));
        }
        env
    }

    /// Node `node`'s address on the compose network.
    pub fn node_ip(&self, node: u64) -> Ipv4Addr {
        let [a, b, c] = self.net;
        // Node ids are 1..=3 here; the compose file gives node N `.1N`.
        Ipv4Addr::new(a, b, c, 10 + (node % 100) as u8)
    }

    fn nodes(&self) -> impl Iterator<Item = u64> {
        1..=self.resp_ports.len() as u64
    }
}

/// The project name compose gives the compose file in `dir`:
/// `$COMPOSE_PROJECT_NAME`, else the directory's name, lower-cased, with
/// only letters, digits, `-` and `_` kept.
fn default_project(dir: &Path) -> String {
    if let Some(name) = std::env::var("COMPOSE_PROJECT_NAME")
        .ok()
        .filter(|n| !n.is_empty())
    {
        return name;
    }
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if name.is_empty() {
        "raftlimit".into()
    } else {
        name
    }
}

/// Why docker cannot be used here, if it cannot: no CLI, no daemon, or no
/// compose. Tests print it and skip.
pub fn docker_unavailable() -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Some(format!("the docker CLI cannot be run: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "the docker daemon is not reachable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => compose_command()
            .err()
            .map(|e| format!("no docker compose: {e}")),
    }
}

/// `docker compose` (the plugin) if it works, else `docker-compose`.
fn compose_command() -> Result<Vec<&'static str>, Error> {
    for candidate in [vec!["docker", "compose"], vec!["docker-compose"]] {
        let works = Command::new(candidate[0])
            .args(&candidate[1..])
            .arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Ok(candidate);
        }
    }
    Err(Error::Cluster(
        "neither `docker compose` nor `docker-compose` works".into(),
    ))
}

/// Runs a command to completion; its stdout on success, else an error
/// built by `err` from a description of the failure.
fn run(cmd: &mut Command, err: fn(String) -> Error) -> Result<String, Error> {
    let what = format!("{cmd:?}");
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn docker(args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    cmd
}

/// A compose project of raftlimit nodes; see the module docs.
#[derive(Debug)]
pub struct DockerCluster {
    options: DockerOptions,
    compose: Vec<&'static str>,
    password: String,
    /// The partition in force, re-applied to containers that restart.
    partition: Mutex<Option<Partition>>,
}

impl DockerCluster {
    /// The project `options` names, up or not: [`DockerCluster::up`]
    /// starts it, or it was started with `docker compose up -d`.
    pub fn attach(options: DockerOptions) -> Result<Self, Error> {
        let password_file = options.deploy_dir.join("secrets/password");
        let password = std::fs::read_to_string(&password_file)
            .map_err(|e| {
                Error::Cluster(format!(
                    "{}: {e} (make the deploy files with `make deploy-files`)",
                    password_file.display()
                ))
            })?
            .trim_end_matches('\n')
            .to_owned();
        Ok(Self {
            compose: compose_command()?,
            options,
            password,
            partition: Mutex::new(None),
        })
    }

    /// Brings the project up (`up -d`), waits until every container is
    /// healthy and checks that each has its fixed address.
    pub fn up(&self) -> Result<(), Error> {
        run(
            &mut self.compose_cmd(&["up", "-d", "--no-build"]),
            Error::Cluster,
        )?;
        let nodes: Vec<u64> = self.options.nodes().collect();
        self.wait_healthy(&nodes, self.options.ready_timeout)?;
        for node in nodes {
            let actual = self.inspect(
                node,
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            )?;
            let expected = self.options.node_ip(node).to_string();
            if actual != expected {
                return Err(Error::Cluster(format!(
                    "node{node} has address {actual:?} on the compose network, expected {expected}"
                )));
            }
        }
        Ok(())
    }

    /// Removes the project's containers, network and volumes (`down -v`).
    pub fn down(&self) -> Result<(), Error> {
        run(
            &mut self.compose_cmd(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]),
            Error::Cluster,
        )
        .map(drop)
    }

    /// The settings this cluster was made with.
    pub fn options(&self) -> &DockerOptions {
        &self.options
    }

    fn compose_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("--project-name")
            .arg(&self.options.project)
            .arg("--file")
            .arg(&self.options.compose_file)
            .args(args)
            .envs(self.options.compose_env());
        cmd
    }

    /// The id of node `node`'s container (running or not).
    pub fn container(&self, node: u64) -> Result<String, Error> {
        let project = format!("label=com.docker.compose.project={}", self.options.project);
        let service = format!("label=com.docker.compose.service=node{node}");
        let out = run(
            &mut docker(&["ps", "-aq", "--filter", &project, "--filter", &service]),
            Error::Cluster,
        )?;
        let ids: Vec<&str> = out.split_whitespace().collect();
        match ids.as_slice() {
            [id] => Ok((*id).to_owned()),
            [] => Err(Error::Cluster(format!(
                "no container for node{node} in compose project {}",
                self.options.project
            ))),
            _ => Err(Error::Cluster(format!(
                "several containers for node{node} in compose project {}: {ids:?}",
                self.options.project
            ))),
        }
    }

    fn inspect(&self, node: u64, format: &str) -> Result<String, Error> {
        let id = self.container(node)?;
        run(
            &mut docker(&["inspect", "--format", format, &id]),
            Error::Cluster,
        )
        .map(|s| s.trim().to_owned())
    }

    /// The container's health: `healthy`, `unhealthy`, `starting`, or
    /// its state (`exited`, `paused`, …) when it is not running.
    pub fn health(&self, node: u64) -> Result<String, Error> {
        self.inspect(
            node,
            "{{if and .State.Running (not .State.Paused) .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
        )
    }

    /// Waits until the given nodes' containers report healthy.
    pub fn wait_healthy(&self, nodes: &[u64], timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        for &node in nodes {
            loop {
                let health = self.health(node)?;
                if health == "healthy" {
                    break;
                }
                if health == "exited" || health == "dead" {
                    return Err(Error::Cluster(format!(
                        "node{node}'s container {health}; see `docker logs {}`",
                        self.container(node)?
                    )));
                }
                if Instant::now() > deadline {
                    return Err(Error::Cluster(format!(
                        "node{node} not healthy after {timeout:?} (last: {health})"
                    )));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(())
    }

    /// The host PID of a running container's process; `None` if it is not running.
    fn pid(&self, node: u64) -> Result<Option<u32>, Error> {
        let pid = self.inspect(node, "{{.State.Pid}}")?;
        match pid.parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(pid) => Ok(Some(pid)),
            Err(_) => Err(Error::Fault(format!(
                "docker reports PID {pid:?} for node{node}"
            ))),
        }
    }

    /// Runs `iptables -w ARGS` in the network namespace of process `pid`.
    fn iptables(pid: u32, args: &[&str]) -> Result<(), Error> {
        let target = pid.to_string();
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &target, "-n", "iptables", "-w"]).args(args);
        run(&mut cmd, Error::Fault).map(drop)
    }

    /// Whether `iptables -w ARGS` succeeds in that namespace (for `-C`, `-S`).
    fn iptables_ok(pid: u32, args: &[&str]) -> bool {
        Self::iptables(pid, args).is_ok()
    }

    /// Replaces node `node`'s partition rules with those of `partition`:
    /// drop everything from and to each peer across one of its cut links.
    fn apply(&self, node: u64, partition: &Partition) -> Result<(), Error> {
        let Some(pid) = self.pid(node)? else {
            // Stopped: its namespace is gone; `start` applies the rules.
            return Ok(());
        };
        if Self::iptables_ok(pid, &["-S", CHAIN]) {
            Self::iptables(pid, &["-F", CHAIN])?;
        } else {
            Self::iptables(pid, &["-N", CHAIN])?;
        }
        for hook in ["INPUT", "OUTPUT"] {
            if !Self::iptables_ok(pid, &["-C", hook, "-j", CHAIN]) {
                Self::iptables(pid, &["-I", hook, "1", "-j", CHAIN])?;
            }
        }
        for other in partition.peers_cut(node) {
            let ip = self.options.node_ip(other).to_string();
            Self::iptables(pid, &["-A", CHAIN, "-s", &ip, "-j", "DROP"])?;
            Self::iptables(pid, &["-A", CHAIN, "-d", &ip, "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Removes the chain and the jumps to it from node `node`'s namespace.
    fn clear(&self, node: u64) -> Result<(), Error> {
        let Some(pid) = self.pid(node)? else {
            return Ok(());
        };
        for hook in ["INPUT", "OUTPUT"] {
            while Self::iptables_ok(pid, &["-C", hook, "-j", CHAIN]) {
                Self::iptables(pid, &["-D", hook, "-j", CHAIN])?;
            }
        }
        if Self::iptables_ok(pid, &["-S", CHAIN]) {
            Self::iptables(pid, &["-F", CHAIN])?;
            Self::iptables(pid, &["-X", CHAIN])?;
        }
        Ok(())
    }

    fn container_cmd(&self, node: u64, verb: &str) -> Result<(), Error> {
        let id = self.container(node)?;
        run(&mut docker(&[verb, &id]), Error::Fault).map(drop)
    }
}

impl Cluster for DockerCluster {
    fn endpoints(&self) -> Vec<Endpoint> {
        let tls = self.options.deploy_dir.join("tls");
        self.options
            .nodes()
            .zip(&self.options.resp_ports)
            .map(|(node, port)| Endpoint {
                node,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, *port)),
                tls: Some(ClientTls {
                    ca: tls.join("ca.crt"),
                    cert: Some(tls.join("client.crt")),
                    key: Some(tls.join("client.key")),
                    // The name that proves the node's identity in its certificate.
                    server_name: format!("node-{node}.raftlimit"),
                }),
                user: None,
                password: Some(self.password.clone()),
            })
            .collect()
    }

    fn kill(&self, node: u64) -> Result<(), Error> {
        let id = self.container(node)?;
        run(
            &mut docker(&["kill", "--signal", "KILL", &id]),
            Error::Fault,
        )
        .map(drop)
    }

    fn start(&self, node: u64) -> Result<(), Error> {
        self.container_cmd(node, "start")?;
        match self.partition.lock().as_ref() {
            Some(partition) => self.apply(node, partition),
            None => Ok(()),
        }
    }

    fn pause(&self, node: u64) -> Result<(), Error> {
        self.container_cmd(node, "pause")
    }

    fn resume(&self, node: u64) -> Result<(), Error> {
        self.container_cmd(node, "unpause")
    }

    fn partition(&self, partition: &Partition) -> Result<(), Error> {
        let nodes: Vec<u64> = self.options.nodes().collect();
        if let Some(stranger) = partition.nodes().into_iter().find(|n| !nodes.contains(n)) {
            return Err(Error::Fault(format!(
                "partition ({partition}) names node {stranger}, which is not one of {nodes:?}"
            )));
        }
        let mut current = self.partition.lock();
        *current = Some(partition.clone());
        for node in nodes {
            self.apply(node, partition)?;
        }
        Ok(())
    }

    fn heal(&self) -> Result<(), Error> {
        let mut current = self.partition.lock();
        *current = None;
        for node in self.options.nodes() {
            self.clear(node)?;
        }
        Ok(())
    }

    fn collect_logs(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        for node in self.options.nodes() {
            let id = self.container(node)?;
            let path = dir.join(format!("node{node}.log"));
            let out = File::create(&path).map_err(|e| Error::file(&path, e))?;
            let err = out.try_clone().map_err(|e| Error::file(&path, e))?;
            let status = docker(&["logs", "--timestamps", &id])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .status()
                .map_err(|e| Error::Fault(format!("docker logs {id}: {e}")))?;
            if !status.success() {
                return Err(Error::Fault(format!("docker logs {id}: {status}")));
            }
        }
        Ok(())
    }
}
