//! A kernel booted inside the benchmark process, spoken to through `Kernel::request`.

use std::time::Duration;

use astrid_kernel::{Kernel, KernelConfig};
use astrid_types::wire::PackageUpload;
use astrid_types::{AstridHome, PrincipalId};

use crate::{parse_ns, BenchError};

/// Long enough for the longest guest loop criterion asks for during warm-up, which doubles
/// the iteration count until three seconds have passed.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct InProcessKernel {
    // Dropped first: the kernel's tasks live on `rt`.
    kernel: Kernel,
    rt: tokio::runtime::Runtime,
    principal: PrincipalId,
    home_dir: tempfile::TempDir,
}

impl InProcessKernel {
    /// Boots a kernel on a fresh temporary home (the daemon's runtime shape: multi-threaded,
    /// handlers on the blocking pool) and installs `uploads`.
    pub fn boot(uploads: Vec<PackageUpload>) -> Result<InProcessKernel, BenchError> {
        let home = tempfile::tempdir().map_err(|e| BenchError::io(std::env::temp_dir(), e))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| BenchError::io("tokio runtime", e))?;
        let mut config = KernelConfig::new(AstridHome::new(home.path()));
        // The guest loops may run for seconds; the default 5 s deadline would cut them off.
        config.quota.timeout = CALL_TIMEOUT;
        let kernel = {
            let _enter = rt.enter();
            Kernel::boot(config)?
        };
        for upload in uploads {
            rt.block_on(kernel.install(upload, false))?;
        }
        Ok(InProcessKernel {
            kernel,
            rt,
            principal: PrincipalId::default_local(),
            home_dir: home,
        })
    }

    /// The context `capsule` runs with for the benchmark's principal.
    pub fn capsule_context(
        &self,
        capsule: &str,
    ) -> Result<std::sync::Arc<astrid_sandbox::CapsuleContext>, BenchError> {
        let _enter = self.rt.enter();
        Ok(self.kernel.capsule_context(&self.principal, capsule)?)
    }

    /// Lets `capsule` reach the local `target` (`host:port`) for the benchmark's principal.
    pub fn egress_allow(&self, capsule: &str, target: &str) -> Result<(), BenchError> {
        Ok(self.kernel.egress_allow(&self.principal, capsule, target)?)
    }

    /// The benchmark principal's own home (`~`), which its default grants cover.
    pub fn principal_home(&self) -> std::path::PathBuf {
        AstridHome::new(self.home_dir.path()).principal_home(&self.principal)
    }

    /// One request, as a socket client would make it, answered by the first handler reply.
    pub fn request(&self, topic: &str, payload: Vec<u8>) -> Result<Vec<u8>, BenchError> {
        self.rt
            .block_on(
                self.kernel
                    .request(&self.principal, topic, payload, CALL_TIMEOUT),
            )
            .map_err(|e| BenchError::Request {
                topic: topic.to_string(),
                reason: e.to_string(),
            })
    }

    /// Runs one of the `bench` capsule's loops for `n` iterations and returns the nanoseconds
    /// the guest measured around the loop (instantiation and delivery excluded).
    pub fn guest_loop_ns(&self, topic: &str, n: u64) -> Result<u64, BenchError> {
        let reply = self.request(topic, n.to_string().into_bytes())?;
        parse_ns(topic, &reply)
    }
}
