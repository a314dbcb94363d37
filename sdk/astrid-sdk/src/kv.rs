//! The capsule's own key-value namespace (needs `kv = true` in `[capabilities]`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::astrid::kv::kv;
use crate::error::{KvError, SysError};

/// The value under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    kv::get(key).map_err(Into::into)
}

/// The value under `key` as UTF-8 text; invalid UTF-8 is an `invalid-argument` error.
pub fn get_string(key: &str) -> Result<Option<String>, KvError> {
    get(key)?
        .map(|v| {
            String::from_utf8(v)
                .map_err(|_| KvError::InvalidArgument(format!("value of {key} is not UTF-8")))
        })
        .transpose()
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    kv::set(key, value.as_ref()).map_err(Into::into)
}

/// Removes `key`; true when something was removed.
pub fn delete(key: &str) -> Result<bool, KvError> {
    kv::delete(key).map_err(Into::into)
}

/// Keys starting with `prefix`, in byte order.
pub fn list(prefix: &str) -> Result<Vec<String>, KvError> {
    kv::list_keys(prefix).map_err(Into::into)
}

/// Atomically replaces the value when it currently equals `expected` (`None` = absent).
/// `new` of `None` deletes. True when the swap happened.
pub fn cas(key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool, KvError> {
    kv::compare_and_swap(key, expected, new).map_err(Into::into)
}

/// The JSON value under `key`, decoded.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, SysError> {
    match get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), SysError> {
    let bytes = serde_json::to_vec(value)?;
    set(key, bytes)?;
    Ok(())
}
