//! Per-principal capsule settings the operator controls: `[env]` overrides, encrypted
//! secrets bound to an origin, and local-network egress consents. Each change takes effect
//! for the next invocation (the capsule's cached context is dropped) and is audited.

use std::sync::Arc;

use astrid_audit::Decision;
use astrid_crypto::now_ms;
use astrid_egress::{Consent, Credential, LocalTarget};
use astrid_sandbox::NetAccess;
use astrid_types::wire::SecretInfo;
use astrid_types::{Manifest, PrincipalId};
use url::Url;
use zeroize::Zeroizing;

use crate::audit::KERNEL;
use crate::error::KernelError;
use crate::kernel::Inner;

fn settings_err(e: impl std::fmt::Display) -> KernelError {
    KernelError::Settings(e.to_string())
}

/// `https://host[:port]` (or `http://` for a local server) → (scheme, host, port).
pub(crate) fn parse_origin(origin: &str) -> Result<(String, String, u16), String> {
    let url = Url::parse(origin).map_err(|e| format!("origin `{origin}`: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("origin `{origin}` must be http(s)"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("origin `{origin}` has no host")),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("origin `{origin}` has no port"))?;
    Ok((url.scheme().to_string(), host, port))
}

impl Inner {
    fn manifest_of(&self, capsule: &str) -> Result<Arc<Manifest>, KernelError> {
        self.installed(capsule)
            .map(|i| i.manifest.clone())
            .ok_or_else(|| settings_err(format!("no capsule named `{capsule}` is installed")))
    }

    pub(crate) fn known(&self, p: &PrincipalId) -> Result<(), KernelError> {
        if self.principal_exists(p) {
            Ok(())
        } else {
            Err(KernelError::UnknownPrincipal(p.to_string()))
        }
    }

    pub fn config_set(
        &self,
        p: &PrincipalId,
        capsule: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<(String, String)>, KernelError> {
        self.known(p)?;
        let m = self.manifest_of(capsule)?;
        match m.env.get(key) {
            None => {
                return Err(settings_err(format!(
                    "capsule `{capsule}` declares no setting `{key}` in [env]"
                )))
            }
            Some(d) if d.secret => {
                return Err(settings_err(format!(
                    "`{key}` is a secret; store it with a secret command, not as a setting"
                )))
            }
            Some(_) => {}
        }
        self.store_for(p)?
            .config_set(capsule, key, value)
            .map_err(settings_err)?;
        let shown = value.map_or("cleared".to_string(), |v| format!("= {v}"));
        self.record(
            p,
            KERNEL,
            "config.set",
            &format!("capsule:{capsule}/{key}"),
            Decision::Recorded,
            &shown,
        )?;
        self.forget_contexts(capsule);
        self.config_show(p, capsule)
    }

    /// Defaults from the manifest, overridden by the principal's settings.
    pub fn config_show(
        &self,
        p: &PrincipalId,
        capsule: &str,
    ) -> Result<Vec<(String, String)>, KernelError> {
        self.known(p)?;
        let m = self.manifest_of(capsule)?;
        Ok(self.effective_config(p, &m)?.into_iter().collect())
    }

    pub fn effective_config(
        &self,
        p: &PrincipalId,
        m: &Manifest,
    ) -> Result<std::collections::BTreeMap<String, String>, KernelError> {
        let mut config: std::collections::BTreeMap<String, String> = m
            .env
            .iter()
            .filter(|(_, d)| !d.secret)
            .filter_map(|(k, d)| d.default.clone().map(|v| (k.clone(), v)))
            .collect();
        let name = m.package.name.to_string();
        for (k, v) in self.store_for(p)?.config_all(&name).map_err(settings_err)? {
            if m.env.get(&k).is_some_and(|d| !d.secret) {
                config.insert(k, v);
            }
        }
        Ok(config)
    }

    pub fn secret_set(
        &self,
        p: &PrincipalId,
        capsule: &str,
        name: &str,
        value: &str,
        origin: &str,
    ) -> Result<(), KernelError> {
        self.known(p)?;
        let m = self.manifest_of(capsule)?;
        let decl = m.secrets.iter().find(|s| s.name == name).ok_or_else(|| {
            settings_err(format!(
                "capsule `{capsule}` declares no [[secret]] named `{name}`"
            ))
        })?;
        let (scheme, host, port) = parse_origin(origin).map_err(settings_err)?;
        if let Some(bound) = &decl.host {
            if !host_matches(bound, &host, port) {
                return Err(settings_err(format!(
                    "capsule `{capsule}` declares secret `{name}` for `{bound}`, not `{host}:{port}`"
                )));
            }
        }
        if value.is_empty() || value.chars().any(|c| c.is_control()) {
            return Err(settings_err(
                "a secret must be non-empty and contain no control characters",
            ));
        }
        let canonical = format!("{scheme}://{}:{port}", bracket(&host));
        self.store_for(p)?
            .secret_put(
                &self.secret_key,
                capsule,
                name,
                value.as_bytes(),
                &canonical,
                now_ms(),
            )
            .map_err(settings_err)?;
        self.record(
            p,
            KERNEL,
            "secret.set",
            &format!("capsule:{capsule}/{name}"),
            Decision::Recorded,
            &format!("stored, bound to {canonical}"),
        )?;
        self.forget_contexts(capsule);
        Ok(())
    }

    pub fn secret_list(&self, p: &PrincipalId) -> Result<Vec<SecretInfo>, KernelError> {
        self.known(p)?;
        Ok(self
            .store_for(p)?
            .secret_list()
            .map_err(settings_err)?
            .into_iter()
            .map(|s| SecretInfo {
                capsule: s.capsule,
                name: s.name,
                origin: s.origin,
                updated_ms: s.updated_ms,
            })
            .collect())
    }

    pub fn secret_remove(
        &self,
        p: &PrincipalId,
        capsule: &str,
        name: &str,
    ) -> Result<(), KernelError> {
        self.known(p)?;
        if !self
            .store_for(p)?
            .secret_remove(capsule, name)
            .map_err(settings_err)?
        {
            return Err(settings_err(format!(
                "no secret `{name}` stored for capsule `{capsule}`"
            )));
        }
        self.record(
            p,
            KERNEL,
            "secret.remove",
            &format!("capsule:{capsule}/{name}"),
            Decision::Recorded,
            "removed",
        )?;
        self.forget_contexts(capsule);
        Ok(())
    }

    pub fn egress_allow(
        &self,
        p: &PrincipalId,
        capsule: &str,
        target: &str,
        allow: bool,
    ) -> Result<Vec<(String, String)>, KernelError> {
        self.known(p)?;
        let _ = self.manifest_of(capsule)?;
        let parsed: LocalTarget = target
            .parse()
            .map_err(|e| settings_err(format!("target `{target}`: {e}")))?;
        let canonical = format!("{}:{}", bracket(&parsed.host), parsed.port);
        let store = self.store_for(p)?;
        if allow {
            store
                .egress_allow(capsule, &canonical, now_ms())
                .map_err(settings_err)?;
        } else if !store
            .egress_revoke(capsule, &canonical)
            .map_err(settings_err)?
        {
            return Err(settings_err(format!(
                "capsule `{capsule}` has no local-egress consent for `{canonical}`"
            )));
        }
        self.record(
            p,
            KERNEL,
            if allow {
                "egress.consent"
            } else {
                "egress.revoke"
            },
            &format!("capsule:{capsule} -> {canonical}"),
            Decision::Recorded,
            if allow { "granted" } else { "revoked" },
        )?;
        self.forget_contexts(capsule);
        self.egress_show(p)
    }

    pub fn egress_show(&self, p: &PrincipalId) -> Result<Vec<(String, String)>, KernelError> {
        self.known(p)?;
        self.store_for(p)?.egress_list(None).map_err(settings_err)
    }

    /// What `astrid:http` gets for this capsule and principal, or `None` without `net`.
    pub fn net_access(
        &self,
        p: &PrincipalId,
        m: &Manifest,
    ) -> Result<Option<Arc<NetAccess>>, KernelError> {
        if m.capabilities.net.is_empty() {
            return Ok(None);
        }
        let capsule = m.package.name.to_string();
        let store = self.store_for(p)?;
        let mut local = Vec::new();
        for (_, target) in store.egress_list(Some(&capsule)).map_err(settings_err)? {
            // Stored canonical; one that no longer parses grants nothing.
            if let Ok(t) = target.parse::<LocalTarget>() {
                local.push(t);
            }
        }
        let mut credentials = Vec::new();
        for decl in &m.secrets {
            let Some((value, origin)) = store
                .secret_get(&self.secret_key, &capsule, &decl.name)
                .map_err(settings_err)?
            else {
                continue;
            };
            let (scheme, host, port) = parse_origin(&origin).map_err(settings_err)?;
            let value = String::from_utf8(value.to_vec())
                .map_err(|_| settings_err(format!("secret `{}` is not UTF-8", decl.name)))?;
            credentials.push(Credential {
                scheme,
                host,
                port,
                header: decl.header.clone(),
                value: Zeroizing::new(format!("{}{}", decl.prefix, value)),
            });
        }
        Ok(Some(Arc::new(NetAccess {
            airlock: self.airlock.clone(),
            consent: Consent { local },
            credentials,
            rt: self.rt.clone(),
        })))
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A manifest's `host` or `host:port` against a concrete origin (port 443 when absent).
fn host_matches(bound: &str, host: &str, port: u16) -> bool {
    let (h, p) = match bound.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() => {
            (h, p.parse().unwrap_or(0))
        }
        _ => (bound, 443),
    };
    h.trim_matches(|c| c == '[' || c == ']')
        .eq_ignore_ascii_case(host)
        && p == port
}

#[cfg(test)]
mod tests {
    use super::{host_matches, parse_origin};

    fn origin(s: &str) -> (String, String, u16) {
        parse_origin(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn an_origin_is_normalised_to_scheme_host_and_port() {
        assert_eq!(
            origin("https://API.Example.com"),
            ("https".into(), "api.example.com".into(), 443)
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/v1"),
            ("http".into(), "127.0.0.1".into(), 8080)
        );
        assert_eq!(
            origin("https://[::1]:8443"),
            ("https".into(), "::1".into(), 8443)
        );
        // The URL parser's own normalisation: a hex IPv4 is the address it means.
        assert_eq!(origin("https://0x7f.1").1, "127.0.0.1");
    }

    #[test]
    fn an_origin_that_is_not_http_or_has_no_host_is_refused() {
        for bad in [
            "ftp://example.com",
            "file:///etc/passwd",
            "example.com",
            "https://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} was accepted");
        }
        assert!(parse_origin("ftp://example.com")
            .unwrap_err()
            .contains("must be http(s)"));
    }

    #[test]
    fn a_manifest_host_matches_only_its_own_port() {
        assert!(host_matches("api.example.com", "api.example.com", 443));
        assert!(host_matches("API.example.com", "api.example.com", 443));
        assert!(!host_matches("api.example.com", "api.example.com", 8443));
        assert!(host_matches(
            "api.example.com:8443",
            "api.example.com",
            8443
        ));
        assert!(!host_matches(
            "api.example.com:8443",
            "api.example.com",
            443
        ));
        assert!(!host_matches("example.com", "api.example.com", 443));
        assert!(host_matches("[::1]:8443", "::1", 8443));
        // An empty port is no port: it matches nothing rather than everything.
        assert!(!host_matches("example.com:", "example.com", 443));
    }
}
