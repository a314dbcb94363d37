//! JSON that keeps its keys in the order written.
//!
//! `serde_json::Value` sorts object keys (the workspace does not enable `preserve_order`,
//! and turning it on here would change every crate built alongside). The services send
//! their keys in a fixed order (`"type"` first for Anthropic, `"id", "object", …` for
//! OpenAI), and a fixture that claims to match them byte for byte must do the same.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A JSON value whose objects serialise in insertion order.
#[derive(Debug, Clone)]
pub(crate) enum J {
    /// Any plain value (objects inside it are written in `serde_json`'s order).
    V(Value),
    O(Vec<(&'static str, J)>),
    A(Vec<J>),
}

/// `obj! { "a": x, "b": y }`: an ordered object; each value goes through `J::from`.
macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => {
        $crate::ordered::J::O(vec![$(($k, $crate::ordered::J::from($v))),*])
    };
}
pub(crate) use obj;

impl J {
    pub(crate) fn null() -> J {
        J::V(Value::Null)
    }
}

impl std::fmt::Display for J {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Serialising plain strings, numbers and maps to a String cannot fail.
        let text = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::V(v) => v.serialize(s),
            J::O(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            J::A(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl From<Value> for J {
    fn from(v: Value) -> J {
        J::V(v)
    }
}

impl From<&Value> for J {
    fn from(v: &Value) -> J {
        J::V(v.clone())
    }
}

impl From<&str> for J {
    fn from(v: &str) -> J {
        J::V(Value::String(v.to_string()))
    }
}

impl From<String> for J {
    fn from(v: String) -> J {
        J::V(Value::String(v))
    }
}

impl From<&String> for J {
    fn from(v: &String) -> J {
        J::from(v.as_str())
    }
}

impl From<Option<&str>> for J {
    fn from(v: Option<&str>) -> J {
        v.map_or_else(J::null, J::from)
    }
}

impl From<u64> for J {
    fn from(v: u64) -> J {
        J::V(Value::from(v))
    }
}

impl From<usize> for J {
    fn from(v: usize) -> J {
        J::V(Value::from(v))
    }
}

impl From<bool> for J {
    fn from(v: bool) -> J {
        J::V(Value::Bool(v))
    }
}

impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::A(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_order_written() {
        let j = obj! {"type": "b", "index": 0usize, "delta": obj! {"z": true, "a": J::null()},
        "list": vec![obj! {"y": 1u64, "x": "s"}]};
        assert_eq!(
            j.to_string(),
            r#"{"type":"b","index":0,"delta":{"z":true,"a":null},"list":[{"y":1,"x":"s"}]}"#
        );
    }
}
