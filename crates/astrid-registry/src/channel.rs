//! A release channel: `channel.toml`, signed like a registry index (with its own signing
//! context, so neither can pass for the other), listing Astrid's releases and, per platform,
//! an archive of the release's executables ([`BINARIES`]) with its size and BLAKE3 hash. `astrid update` reads it
//! through a [`crate::Fetcher`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use astrid_crypto::KeyPair;
use astrid_types::ArtifactHash;
use semver::Version;
use serde::{Deserialize, Serialize};

use astrid_shuttle::{TrustStore, TrustedPublisher};

use crate::source::is_relative_file;
use crate::{signed, Fetcher, Location, Purpose, RegistryError, SignedFile};

/// The channel file at the channel's root.
pub const CHANNEL_FILE: &str = "channel.toml";
/// Format 2 added `astrid-netfwd` to the archive. A client of format 1 refuses a format-2
/// channel by its format line, before it downloads an archive it would refuse anyway.
pub const CHANNEL_FORMAT: &str = "astrid-release 2";
/// Largest channel file read.
pub const MAX_CHANNEL_BYTES: u64 = 1 << 20;
/// What a release archive holds: exactly these executables, nothing else. `astrid-netfwd`
/// is not run by a person: it is the forwarder that sandboxes granted hosts start first
/// (`astrid mcp add --allow-net`, a capsule's `process_net`), found beside the others.
pub const BINARIES: [&str; 5] = [
    "astrid",
    "astrid-daemon",
    "astrid-gateway",
    "astrid-emit",
    "astrid-netfwd",
];

/// This machine's platform as a channel names it, e.g. `x86_64-linux`.
pub fn this_platform() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    pub platform: String,
    /// Relative to the channel's root, or an absolute `https://` URL.
    pub file: String,
    pub size: u64,
    pub hash: ArtifactHash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub version: Version,
    #[serde(default, rename = "archive")]
    pub archives: Vec<Archive>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub format: String,
    /// Raised by every publish; an older channel is refused like an older index.
    pub serial: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    #[serde(default, rename = "release")]
    pub releases: Vec<Release>,
}

impl Channel {
    pub fn empty() -> Channel {
        Channel {
            format: CHANNEL_FORMAT.into(),
            serial: 0,
            expires: None,
            releases: Vec::new(),
        }
    }

    /// Parses and checks a channel body (its signature already verified).
    pub fn parse(body: &str) -> Result<Channel, String> {
        let channel: Channel = toml::from_str(body).map_err(|e| e.to_string())?;
        if channel.format != CHANNEL_FORMAT {
            return Err(format!(
                "format `{}` is not `{CHANNEL_FORMAT}`",
                channel.format
            ));
        }
        for (i, r) in channel.releases.iter().enumerate() {
            if channel.releases[..i].iter().any(|o| o.version == r.version) {
                return Err(format!("release {} is listed twice", r.version));
            }
            for (j, a) in r.archives.iter().enumerate() {
                if !(is_relative_file(&a.file) || a.file.starts_with("https://")) {
                    return Err(format!(
                        "release {} {}: file `{}` is neither a relative path nor an https:// URL",
                        r.version, a.platform, a.file
                    ));
                }
                if r.archives[..j].iter().any(|o| o.platform == a.platform) {
                    return Err(format!("release {} lists {} twice", r.version, a.platform));
                }
            }
        }
        Ok(channel)
    }

    pub fn render(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The newest release with an archive for `platform`.
    pub fn newest(&self, platform: &str) -> Option<(&Release, &Archive)> {
        self.releases
            .iter()
            .filter_map(|r| r.archive(platform).map(|a| (r, a)))
            .max_by(|a, b| a.0.version.cmp(&b.0.version))
    }

    pub fn release(&self, version: &Version) -> Option<&Release> {
        self.releases.iter().find(|r| r.version == *version)
    }
}

impl Release {
    pub fn archive(&self, platform: &str) -> Option<&Archive> {
        self.archives.iter().find(|a| a.platform == platform)
    }
}

/// A release channel whose `channel.toml` was fetched and checked: signature, a signer
/// trusted for releases, expiry, and not older than the newest seen before.
pub struct ReleaseChannel {
    fetcher: Fetcher,
    pub channel: Channel,
    pub signer: TrustedPublisher,
}

impl ReleaseChannel {
    /// `now` is Unix seconds; `seen_file` records the newest serial per channel (shared with
    /// registries, under a key of its own).
    pub async fn open(
        location: Location,
        trust: &TrustStore,
        seen_file: &Path,
        now: u64,
    ) -> Result<ReleaseChannel, RegistryError> {
        let fetcher = Fetcher::new(location)?;
        let signed = SignedFile::fetch(
            &fetcher,
            CHANNEL_FILE,
            MAX_CHANNEL_BYTES,
            Purpose::Channel,
            trust,
        )
        .await?;
        // A release replaces the binaries that enforce everything else: trusting a publisher
        // for capsules is not trusting it for that.
        if !signed.signer.releases {
            return Err(RegistryError::NotForReleases {
                what: fetcher.describe(CHANNEL_FILE),
                name: signed.signer.name.clone(),
                key: signed.signer.key.clone(),
            });
        }
        let channel = Channel::parse(&signed.body).map_err(|r| signed.refused(r))?;
        signed.check_fresh(
            channel.expires,
            channel.serial,
            now,
            seen_file,
            &format!("release channel {}", fetcher.location()),
        )?;
        Ok(ReleaseChannel {
            fetcher,
            channel,
            signer: signed.signer,
        })
    }

    pub fn location(&self) -> &Location {
        self.fetcher.location()
    }

    /// The bytes of `archive`, checked against its size and hash in the signed channel.
    pub async fn download(
        &self,
        version: &Version,
        archive: &Archive,
    ) -> Result<Vec<u8>, RegistryError> {
        let bytes = self.fetcher.get(&archive.file, archive.size).await?;
        let actual = ArtifactHash::of(&bytes);
        if bytes.len() as u64 != archive.size || actual != archive.hash {
            return Err(RegistryError::HashMismatch {
                what: format!(
                    "astrid {version} for {} ({})",
                    archive.platform,
                    self.fetcher.describe(&archive.file)
                ),
                expected: archive.hash,
                actual,
            });
        }
        Ok(bytes)
    }
}

/// Adds `archive` as `version` for `platform` to the channel directory `dir` and re-signs it
/// with `key` (the key that signed it before). A published archive never changes.
#[allow(clippy::too_many_arguments)]
pub fn publish_release(
    dir: &Path,
    version: &Version,
    platform: &str,
    archive: &[u8],
    key: &KeyPair,
    valid_for: Option<Duration>,
    now: u64,
) -> Result<Archive, RegistryError> {
    let bad = |reason: String| RegistryError::Publish {
        dir: PathBuf::from(dir),
        reason,
    };
    let valid_platform = !platform.is_empty()
        && platform
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !valid_platform {
        return Err(bad(format!("`{platform}` is not a platform name")));
    }
    let path = dir.join(CHANNEL_FILE);
    let mut channel = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (signer, body) = signed::open(Purpose::Channel, &text)
                .map_err(|e| bad(format!("the existing {CHANNEL_FILE}: {e}")))?;
            if signer != *key.public_key() {
                return Err(bad(format!(
                    "the existing channel is signed by {signer}; publish with that key"
                )));
            }
            Channel::parse(body).map_err(|e| bad(format!("the existing {CHANNEL_FILE}: {e}")))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Channel::empty(),
        Err(e) => return Err(bad(format!("{}: {e}", path.display()))),
    };
    let entry = Archive {
        platform: platform.to_string(),
        file: format!("releases/{version}/astrid-{version}-{platform}.tar"),
        size: archive.len() as u64,
        hash: ArtifactHash::of(archive),
    };
    let release = match channel
        .releases
        .iter_mut()
        .position(|r| r.version == *version)
    {
        Some(i) => &mut channel.releases[i],
        None => {
            channel.releases.push(Release {
                version: version.clone(),
                archives: Vec::new(),
            });
            channel.releases.last_mut().expect("just pushed")
        }
    };
    match release.archive(platform) {
        Some(a) if a.hash == entry.hash => {}
        Some(a) => {
            return Err(bad(format!(
                "{version} for {platform} is published already with hash {}; a release never \
                 changes",
                a.hash
            )))
        }
        None => {
            astrid_shuttle::write_atomic(&dir.join(&entry.file), archive)?;
            release.archives.push(entry.clone());
        }
    }
    channel.releases.sort_by(|a, b| a.version.cmp(&b.version));
    channel.serial += 1;
    channel.expires = valid_for.map(|d| now.saturating_add(d.as_secs()));
    let text = signed::sign(Purpose::Channel, &channel.render(), key);
    astrid_shuttle::write_atomic(&path, text.as_bytes())?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_then_read_back_and_pick_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed(&[3; 32]);
        let v = |s: &str| s.parse::<Version>().unwrap();
        publish_release(
            dir.path(),
            &v("0.2.0"),
            "x86_64-linux",
            b"two",
            &key,
            None,
            0,
        )
        .unwrap();
        publish_release(
            dir.path(),
            &v("0.3.0"),
            "aarch64-linux",
            b"three",
            &key,
            None,
            0,
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join(CHANNEL_FILE)).unwrap();
        let (_, body) = signed::open(Purpose::Channel, &text).unwrap();
        let channel = Channel::parse(body).unwrap();
        assert_eq!(channel.serial, 2);
        let (r, a) = channel.newest("x86_64-linux").unwrap();
        assert_eq!(r.version, v("0.2.0"));
        assert_eq!(a.hash, ArtifactHash::of(b"two"));
        assert!(channel.newest("riscv64-linux").is_none());
        // Same version and platform, other bytes: refused; other key: refused.
        assert!(
            publish_release(dir.path(), &v("0.2.0"), "x86_64-linux", b"2", &key, None, 0).is_err()
        );
        let other = KeyPair::from_seed(&[4; 32]);
        assert!(publish_release(
            dir.path(),
            &v("0.4.0"),
            "x86_64-linux",
            b"4",
            &other,
            None,
            0
        )
        .is_err());
        // An index signature is not a channel signature.
        assert!(signed::open(Purpose::Index, &text).is_err());
    }
}
