//! A sandbox fixture: a fake operator home with credentials in it, an Astrid home with a secret,
//! and a workspace. The homes live under the target directory (outside /tmp, on the read-only
//! root inside the sandbox, like a real home); the workspace lives under /tmp, which the
//! sandbox replaces with a fresh tmpfs, so every test also proves the workspace bind survives
//! that.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use astrid_process::{run, Command, Output, ProcessError, SandboxPolicy};
use tempfile::TempDir;

pub const SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY----- fake-ssh-secret";
pub const AWS_KEY: &str = "aws_secret_access_key = fake-aws-secret";
pub const ASTRID_SECRET: &str = "fake-astrid-master-key";

pub struct Fixture {
    pub homes: TempDir,
    pub workspace: TempDir,
    pub policy: SandboxPolicy,
}

impl Fixture {
    pub fn new() -> Fixture {
        let homes = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let home = homes.path().join("home");
        let astrid = homes.path().join("astrid");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(home.join(".aws")).unwrap();
        std::fs::create_dir_all(astrid.join("keys")).unwrap();
        std::fs::write(home.join(".ssh/id_rsa"), SSH_KEY).unwrap();
        std::fs::write(home.join(".aws/credentials"), AWS_KEY).unwrap();
        std::fs::write(
            home.join(".netrc"),
            "machine example.com password fake-netrc",
        )
        .unwrap();
        std::fs::write(home.join("notes.txt"), "not a secret").unwrap();
        std::fs::write(astrid.join("keys/master"), ASTRID_SECRET).unwrap();
        let policy = SandboxPolicy::with_home(&home, &astrid).expect("bubblewrap must work here");
        let workspace = tempfile::tempdir().unwrap();
        Fixture {
            homes,
            workspace,
            policy,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.homes.path().join("home")
    }

    pub fn astrid_home(&self) -> PathBuf {
        self.homes.path().join("astrid")
    }

    pub fn ws(&self) -> &Path {
        self.workspace.path()
    }

    /// A command in the workspace.
    pub fn cmd(&self, program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: self.ws().to_path_buf(),
            ..Default::default()
        }
    }

    pub fn run(&self, cmd: &Command) -> Result<Output, ProcessError> {
        run(&self.policy, cmd)
    }

    /// `sh -c script` in the workspace; must not fail to start.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&self.cmd("sh", &["-c", script])).expect("sh runs")
    }

    pub fn sh_with(&self, script: &str, edit: impl FnOnce(&mut Command)) -> Output {
        let mut c = self.cmd("sh", &["-c", script]);
        edit(&mut c);
        self.run(&c).expect("sh runs")
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}
