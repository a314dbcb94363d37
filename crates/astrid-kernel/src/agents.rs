//! `agent create --clone` and `agent delete`.
//!
//! A clone is a replica written through the ordinary setters of the new principal: capsule
//! grants and quota, settings, egress consents, KV, `~`, and secrets decrypted and sealed
//! again under fresh nonces. Capability tokens are never copied: each live token of the
//! source is minted anew for the clone (a pattern on the source's `~` moved to the clone's),
//! so nothing of the source's verifies for the clone or the other way round. Devices are not
//! cloned: a device belongs to one principal. The clone's audit chain starts empty.
//!
//! Deleting a principal archives its audit chain under `principals/.archive/` (a name no
//! principal can have) before anything else goes; the rest of its directory is removed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use astrid_audit::{head_path, log_path, Decision};
use astrid_crypto::now_ms;
use astrid_types::wire::AgentInfo;
use astrid_types::PrincipalId;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::fsutil::private_dir;
use crate::kernel::Inner;

/// What a clone carried over, for its audit entry.
#[derive(Default)]
struct Carried {
    kv: usize,
    settings: usize,
    secrets: usize,
    files: usize,
    skipped_links: usize,
    tokens: usize,
}

impl Inner {
    pub fn clone_principal(
        self: &Arc<Self>,
        dst: &PrincipalId,
        src: &PrincipalId,
    ) -> Result<AgentInfo, KernelError> {
        let _guard = self.capsules.one_change_at_a_time();
        if !self.principal_exists(src) {
            return Err(KernelError::UnknownPrincipal(src.to_string()));
        }
        if self.principal_exists(dst) {
            return Err(KernelError::Capability(format!(
                "principal `{dst}` already exists"
            )));
        }
        self.ensure_principal(dst)?;
        match self.replicate(dst, src) {
            Ok(c) => {
                let what = format!(
                    "{} KV entries, {} settings, {} secrets re-sealed, {} files, {} tokens \
                     minted anew{}",
                    c.kv,
                    c.settings,
                    c.secrets,
                    c.files,
                    c.tokens,
                    if c.skipped_links > 0 {
                        format!(", {} symlinks not copied", c.skipped_links)
                    } else {
                        String::new()
                    }
                );
                self.record(
                    dst,
                    KERNEL,
                    "principal.clone",
                    &format!("principal:{src}"),
                    Decision::Recorded,
                    &format!("replica of `{src}`: {what}"),
                )?;
                self.record(
                    src,
                    KERNEL,
                    "principal.cloned",
                    &format!("principal:{dst}"),
                    Decision::Recorded,
                    &format!("replicated into `{dst}`: {what}"),
                )?;
                for name in &self.profile(dst).capsules {
                    if let Some(inst) = self.installed(name) {
                        self.start_background_for(dst, &inst);
                    }
                }
                self.agent_info(dst)
            }
            Err(e) => {
                // Half a replica is worse than none: take it away (its chain is archived).
                if let Err(undo) = self.remove_principal(dst, &format!("clone failed: {e}")) {
                    tracing::error!(principal = %dst, "undoing a failed clone: {undo}");
                }
                Err(e)
            }
        }
    }

    fn replicate(&self, dst: &PrincipalId, src: &PrincipalId) -> Result<Carried, KernelError> {
        let store_err = |e: astrid_store::StoreError| KernelError::Store {
            principal: dst.to_string(),
            source: e,
        };
        let mut c = Carried::default();
        let profile = (*self.profile(src)).clone();
        self.update_profile(dst, |prof| {
            *prof = profile;
            Ok(())
        })?;
        let from = self.store_for(src)?;
        let to = self.store_for(dst)?;
        for (ns, key, value) in from.kv_dump().map_err(store_err)? {
            to.kv_set(&ns, &key, &value).map_err(store_err)?;
            c.kv += 1;
        }
        for (capsule, key, value) in from.config_dump().map_err(store_err)? {
            to.config_set(&capsule, &key, Some(&value))
                .map_err(store_err)?;
            c.settings += 1;
        }
        let now = now_ms();
        for (capsule, target) in from.egress_list(None).map_err(store_err)? {
            to.egress_allow(&capsule, &target, now).map_err(store_err)?;
        }
        for (key, value) in from.meta_dump("capsule.").map_err(store_err)? {
            to.meta_set(&key, &value).map_err(store_err)?;
        }
        for s in from.secret_list().map_err(store_err)? {
            let Some((value, origin)) = from
                .secret_get(&self.secret_key, &s.capsule, &s.name)
                .map_err(store_err)?
            else {
                continue;
            };
            to.secret_put(&self.secret_key, &s.capsule, &s.name, &value, &origin, now)
                .map_err(store_err)?;
            c.secrets += 1;
        }
        let (src_home, dst_home) = (self.home.principal_home(src), self.home.principal_home(dst));
        copy_tree(&src_home, &dst_home, &mut c)?;

        // Tokens: the clone already holds its own home grants (minted when it was made).
        let src_prefix = src_home.display().to_string();
        let dst_prefix = dst_home.display().to_string();
        let have: Vec<String> = self
            .token_infos(dst)?
            .into_iter()
            .map(|t| t.pattern)
            .collect();
        for t in self.token_infos(src)? {
            let live = !t.revoked && t.expires_at_ms.is_none_or(|e| e > now);
            if !live {
                continue;
            }
            let pattern = move_home(&t.pattern, &src_prefix, &dst_prefix);
            if have.contains(&pattern) {
                continue;
            }
            let ttl = t
                .expires_at_ms
                .map(|e| Duration::from_millis(e.saturating_sub(now)));
            self.grant(dst, &pattern, ttl)?;
            c.tokens += 1;
        }
        Ok(c)
    }

    /// `agent delete`: recorded, its chain archived, then gone.
    pub fn delete_principal(self: &Arc<Self>, p: &PrincipalId) -> Result<(), KernelError> {
        if *p == PrincipalId::default_local() {
            return Err(KernelError::Capability(
                "the `default` principal cannot be deleted".into(),
            ));
        }
        let _guard = self.capsules.one_change_at_a_time();
        if !self.principal_exists(p) {
            return Err(KernelError::UnknownPrincipal(p.to_string()));
        }
        self.remove_principal(p, "deleted by the operator")
    }

    fn remove_principal(&self, p: &PrincipalId, why: &str) -> Result<(), KernelError> {
        // The last entry of its own chain, then one in the operator's.
        self.record(
            p,
            KERNEL,
            "principal.delete",
            &format!("principal:{p}"),
            Decision::Recorded,
            why,
        )?;
        self.record(
            &PrincipalId::default_local(),
            KERNEL,
            "principal.delete",
            &format!("principal:{p}"),
            Decision::Recorded,
            &format!("{why}; audit chain archived"),
        )?;
        for d in self.device_list(p).unwrap_or_default() {
            self.live_devices.close_all(&d.id);
        }
        for name in &self.profile(p).capsules {
            self.stop_contexts(name, Some(p));
        }
        // Archive first: if that fails, nothing is lost.
        let archive = self
            .home
            .principals_dir()
            .join(".archive")
            .join(format!("{p}-{}", now_ms()));
        private_dir(&archive).map_err(|e| KernelError::io(&archive, e))?;
        let log = log_path(&self.home.principals_dir(), p);
        // The chain's files move below; nothing may append to them through a cached handle.
        if let Some(pr) = self.principals.loaded(p) {
            pr.audit.lock().take();
        }
        for file in [log.clone(), head_path(&log)] {
            if file.exists() {
                let to = archive.join(file.file_name().expect("a file name"));
                std::fs::rename(&file, &to).map_err(|e| KernelError::io(&file, e))?;
            }
        }
        self.forget_principal_contexts(p);
        self.principals.forget(p);
        let dir = self.home.principal_dir(p);
        std::fs::remove_dir_all(&dir).map_err(|e| KernelError::io(&dir, e))?;
        tracing::info!(principal = %p, archive = %archive.display(), "principal deleted");
        Ok(())
    }
}

/// `pattern` with a path under `from` moved under `to` (`fs:read:<from>/x` → `fs:read:<to>/x`).
fn move_home(pattern: &str, from: &str, to: &str) -> String {
    for kind in ["fs:read:", "fs:write:"] {
        if let Some(rest) = pattern.strip_prefix(kind) {
            if let Some(tail) = rest.strip_prefix(from) {
                if tail.is_empty() || tail.starts_with('/') {
                    return format!("{kind}{to}{tail}");
                }
            }
        }
    }
    pattern.to_string()
}

/// Copies regular files and directories; symlinks are counted and left out (one could name
/// a path the clone should not be handed).
fn copy_tree(from: &Path, to: &Path, c: &mut Carried) -> Result<(), KernelError> {
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(KernelError::io(from, e)),
    };
    for e in entries {
        let e = e.map_err(|e| KernelError::io(from, e))?;
        let path = e.path();
        let target = to.join(e.file_name());
        let meta = path
            .symlink_metadata()
            .map_err(|e| KernelError::io(&path, e))?;
        if meta.is_dir() {
            private_dir(&target).map_err(|e| KernelError::io(&target, e))?;
            copy_tree(&path, &target, c)?;
        } else if meta.is_file() {
            std::fs::copy(&path, &target).map_err(|e| KernelError::io(&path, e))?;
            c.files += 1;
        } else {
            c.skipped_links += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::move_home;

    #[test]
    fn home_patterns_move_to_the_clones_home() {
        let (a, b) = ("/h/principals/a/home", "/h/principals/b/home");
        assert_eq!(
            move_home("fs:read:/h/principals/a/home/**", a, b),
            "fs:read:/h/principals/b/home/**"
        );
        assert_eq!(move_home("fs:write:/srv/**", a, b), "fs:write:/srv/**");
        // A sibling whose name only starts with the home's is not moved.
        assert_eq!(
            move_home("fs:read:/h/principals/a/homework/**", a, b),
            "fs:read:/h/principals/a/homework/**"
        );
        assert_eq!(move_home("net:connect:x:443", a, b), "net:connect:x:443");
    }
}
