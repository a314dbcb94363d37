//! Creating and listing principals. A new principal starts with a clean slate: its own
//! directory, an empty store and home, an empty audit chain, and the default grants on its
//! own home; it inherits nothing from whoever created it.

use astrid_audit::Decision;
use astrid_types::wire::AgentInfo;
use astrid_types::PrincipalId;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::kernel::Inner;

impl Inner {
    pub fn create_principal(&self, p: &PrincipalId) -> Result<(), KernelError> {
        if self.principal_exists(p) {
            return Err(KernelError::Capability(format!(
                "principal `{p}` already exists"
            )));
        }
        self.ensure_principal(p)?;
        self.record(
            p,
            KERNEL,
            "principal.create",
            &format!("principal:{p}"),
            Decision::Recorded,
            "created with a clean slate",
        )
    }

    /// Every principal, sorted.
    pub fn principal_names(&self) -> Vec<String> {
        let mut all: Vec<String> = crate::caps::principals(&self.home)
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        all.sort();
        all
    }

    /// `agent show`: the capsules the principal holds (those installed), its tokens,
    /// devices and quota.
    pub fn agent_info(&self, p: &PrincipalId) -> Result<AgentInfo, KernelError> {
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        Ok(AgentInfo {
            name: p.to_string(),
            capsules: self
                .profile(p)
                .capsules
                .iter()
                .filter(|c| self.capsules.contains(c))
                .cloned()
                .collect(),
            tokens: self.token_infos(p)?,
            devices: self.device_list(p)?,
            quota: self.quota_info(p)?,
        })
    }
}
