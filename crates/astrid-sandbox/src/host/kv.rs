use astrid_store::StoreError;

use super::HostState;
use crate::bindings::astrid::kv::kv::{ErrorCode, Host};

impl HostState {
    /// The manifest gate for `astrid:kv`: `kv = true`, or nothing. The namespace is always the
    /// capsule's own inside its principal's store, so there is no way to name another's keys.
    fn kv_gate(&self, op: &str, key: &str) -> Result<&str, ErrorCode> {
        if !self.ctx.manifest.capabilities.kv {
            let reason = format!(
                "capsule `{}` does not declare `kv = true` in [capabilities]",
                self.ctx.capsule()
            );
            self.denied(op, key, &reason);
            return Err(ErrorCode::Denied(reason));
        }
        Ok(self.ctx.capsule())
    }

    /// Writes change the principal's data: each is recorded durably before it happens.
    /// Reads of the capsule's own namespace are not effects and are not recorded.
    fn kv_write_gate(&self, op: &str, key: &str) -> Result<(), ErrorCode> {
        self.kv_gate(op, key)?;
        self.gatekeeper()
            .record_allowed(op, key, "own namespace")
            .map_err(|d| ErrorCode::Denied(d.to_string()))
    }
}

impl HostState {
    /// A write the storage quota refused changed nothing; the refusal is recorded too.
    fn kv_refused<T>(&self, op: &str, key: &str, r: Result<T, StoreError>) -> Result<T, ErrorCode> {
        if let Err(StoreError::QuotaExceeded(m)) = &r {
            self.denied(op, key, &format!("quota-exceeded: {m}"));
        }
        r.map_err(map)
    }
}

fn map(e: StoreError) -> ErrorCode {
    match e {
        StoreError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        StoreError::QuotaExceeded(m) => ErrorCode::QuotaExceeded(m),
        other => ErrorCode::Io(other.to_string()),
    }
}

impl Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, ErrorCode> {
        let ns = self.kv_gate("kv.get", &key)?;
        self.ctx.store.kv_get(ns, &key).map_err(map)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), ErrorCode> {
        self.kv_write_gate("kv.set", &key)?;
        let ns = self.ctx.capsule();
        let cap = self.ctx.storage.kv_cap();
        let r = self.ctx.store.kv_set_capped(ns, &key, &value, cap);
        self.kv_refused("kv.set", &key, r)
    }

    fn delete(&mut self, key: String) -> Result<bool, ErrorCode> {
        self.kv_write_gate("kv.delete", &key)?;
        let ns = self.ctx.capsule();
        self.ctx.store.kv_delete(ns, &key).map_err(map)
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, ErrorCode> {
        let ns = self.kv_gate("kv.list-keys", &prefix)?;
        self.ctx.store.kv_list(ns, &prefix).map_err(map)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, ErrorCode> {
        self.kv_write_gate("kv.compare-and-swap", &key)?;
        let ns = self.ctx.capsule();
        let cap = self.ctx.storage.kv_cap();
        let r = self
            .ctx
            .store
            .kv_cas_capped(ns, &key, expected.as_deref(), new.as_deref(), cap);
        self.kv_refused("kv.compare-and-swap", &key, r)
    }
}
