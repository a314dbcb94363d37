//! `audit show|verify|export`. These read the chain files directly (the daemon need not
//! run): verification needs only the public key in `keys/runtime.pub`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use astrid_audit::{SealedEntry, Witness};
use astrid_crypto::{PublicKey, RUNTIME_PUB_FILE};
use astrid_types::PrincipalId;

use super::Ctx;
use crate::args::AuditCommand;

pub fn run(ctx: &Ctx, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let principal = PrincipalId::new(ctx.principal.clone())
        .map_err(|e| anyhow!("principal `{}`: {e}", ctx.principal))?;
    let path = astrid_audit::log_path(&ctx.home.principals_dir(), &principal);
    if !path.exists() {
        bail!(
            "principal `{principal}` has no audit log (expected {})",
            path.display()
        );
    }
    match cmd {
        AuditCommand::Show { since } => show(&principal, &path, since.as_deref(), ctx.json),
        AuditCommand::Verify { witness } => {
            let witness = witness
                .map(|w| w.parse::<Witness>().map_err(|e| anyhow!(e)))
                .transpose()?;
            verify(ctx, &principal, &path, witness.as_ref())
        }
        AuditCommand::Export => {
            for line in astrid_audit::export(&path, &principal)? {
                outln!("{}", line?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show(
    principal: &PrincipalId,
    path: &std::path::Path,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since.map(parse_since).transpose()?.unwrap_or(0);
    for e in astrid_audit::read_entries(path)? {
        let e: SealedEntry = e?;
        if e.entry.principal != *principal {
            bail!(
                "{}: entry {} belongs to principal `{}`, not `{principal}` (a chain copied \
                 from another principal?); run `astrid audit verify`",
                path.display(),
                e.entry.seq,
                e.entry.principal
            );
        }
        if e.entry.time_ms < since {
            continue;
        }
        if json {
            outln!("{}", astrid_audit::entry_json(&e));
        } else {
            let en = &e.entry;
            outln!(
                "{:>6}  {}  {:<8}  {}  {}  {}  {}",
                en.seq,
                utc(en.time_ms),
                en.decision.as_str(),
                en.capsule,
                en.action,
                en.resource,
                en.outcome
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    ctx: &Ctx,
    principal: &PrincipalId,
    path: &std::path::Path,
    witness: Option<&Witness>,
) -> anyhow::Result<ExitCode> {
    let key_file: PathBuf = ctx.home.keys_dir().join(RUNTIME_PUB_FILE);
    let text = std::fs::read_to_string(&key_file)
        .with_context(|| format!("reading the runtime public key {}", key_file.display()))?;
    let key: PublicKey = text
        .trim()
        .parse()
        .map_err(|e| anyhow!("{}: {e}", key_file.display()))?;
    match astrid_audit::verify_against(path, &key, principal, witness) {
        Ok(report) => {
            outln!(
                "audit chain of `{principal}` intact: {} entries, last seq {}, key {}",
                report.entries,
                report.last_seq,
                key.key_id()
            );
            if report.head_seq < report.last_seq {
                outln!(
                    "signed head at entry {}: entries {}..={} follow it (the head lagged \
                     the log after a crash); each was verified by its signature",
                    report.head_seq,
                    report.head_seq + 1,
                    report.last_seq
                );
            }
            if report.torn_tail_bytes > 0 {
                outln!(
                    "torn tail: {} bytes after the last complete record, never acknowledged \
                     (a crash mid-append); the daemon cuts them when it next opens the chain",
                    report.torn_tail_bytes
                );
            }
            if let Some(w) = witness {
                outln!("witness {w} found in the chain");
            }
            outln!(
                "witness {} (keep it off this machine; `audit verify --witness` checks it later)",
                report.witness()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("audit chain of `{principal}` is NOT intact: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `--since`: milliseconds since the Unix epoch, or an age such as `90s`, `15m`, `2h`, `7d`.
pub fn parse_since(s: &str) -> anyhow::Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("--since `{s}`: expected epoch milliseconds or N[s|m|h|d]"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--since `{s}`: unknown unit `{unit}` (use s, m, h or d)"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(now.saturating_sub(secs * 1000))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, days-from-civil inverted).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn since_takes_epoch_ms_or_an_age() {
        assert_eq!(parse_since("12345").unwrap(), 12345);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let two_h = parse_since("2h").unwrap();
        assert!(now - two_h >= 7_200_000 && now - two_h < 7_260_000);
        assert!(parse_since("5y").is_err());
        assert!(parse_since("soon").is_err());
    }
}
