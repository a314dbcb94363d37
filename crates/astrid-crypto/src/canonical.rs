//! The canonical byte encoding shared by capability tokens and audit entries.
//!
//! Layout: a domain separation tag (so a signature over one kind of record can never be
//! replayed as another), then every field as `u32 big-endian length || bytes`. Integers are
//! fixed-width big-endian, an `Option` is one marker byte (0 = none, 1 = some) followed by the
//! value's bytes, all inside the field's length prefix. Because every field carries its own
//! length, no two different records share an encoding, and a verifier in another language
//! needs nothing but a loop.

use crate::error::DecodeError;

/// Builds canonical bytes field by field.
#[derive(Debug, Clone)]
pub struct CanonicalWriter {
    buf: Vec<u8>,
}

impl CanonicalWriter {
    pub fn new(domain_tag: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(domain_tag);
        CanonicalWriter { buf }
    }

    /// Appends one field. Callers cap their field sizes far below 4 GiB (audit entries at
    /// 16 MiB, tokens at a few hundred bytes), so a longer field is a programming error.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let len = u32::try_from(value.len()).expect("canonical field longer than 4 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    pub fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes(&[value])
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub fn opt_u64(&mut self, value: Option<u64>) -> &mut Self {
        match value {
            None => self.bytes(&[0]),
            Some(v) => {
                let mut field = [0u8; 9];
                field[0] = 1;
                field[1..].copy_from_slice(&v.to_be_bytes());
                self.bytes(&field)
            }
        }
    }

    pub fn opt_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            None => self.bytes(&[0]),
            Some(v) => {
                let mut field = Vec::with_capacity(v.len() + 1);
                field.push(1);
                field.extend_from_slice(v);
                self.bytes(&field)
            }
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical bytes field by field, refusing anything that is not exactly what
/// [`CanonicalWriter`] would have produced.
#[derive(Debug, Clone)]
pub struct CanonicalReader<'a> {
    rest: &'a [u8],
}

impl<'a> CanonicalReader<'a> {
    pub fn new(input: &'a [u8], domain_tag: &[u8]) -> Result<Self, DecodeError> {
        let rest = input
            .strip_prefix(domain_tag)
            .ok_or(DecodeError::DomainTag)?;
        Ok(CanonicalReader { rest })
    }

    /// The next field's raw bytes.
    pub fn field(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(DecodeError::Truncated { field })?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(DecodeError::Truncated { field });
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(value)
    }

    pub fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let value = self.field(field)?;
        value.try_into().map_err(|_| DecodeError::Length {
            field,
            expected: N,
            got: value.len(),
        })
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>(field)?[0])
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.fixed::<8>(field)?))
    }

    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.field(field)?).map_err(|_| DecodeError::Utf8 { field })
    }

    pub fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, DecodeError> {
        Ok(self.opt_fixed::<8>(field)?.map(u64::from_be_bytes))
    }

    pub fn opt_fixed<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<Option<[u8; N]>, DecodeError> {
        let value = self.field(field)?;
        match value.split_first() {
            Some((0, [])) => Ok(None),
            Some((1, v)) => v.try_into().map(Some).map_err(|_| DecodeError::Length {
                field,
                expected: N + 1,
                got: value.len(),
            }),
            _ => Err(DecodeError::OptionMarker { field }),
        }
    }

    /// The bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Ends decoding; leftover bytes are an error, never ignored.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let mut w = CanonicalWriter::new(b"tag\0");
        w.u8(1).u64(2).str("hi").opt_u64(None).opt_u64(Some(5));
        w.opt_bytes(Some(&[9, 9]));
        let bytes = w.finish();
        let expected: Vec<u8> = [
            &b"tag\0"[..],
            &[0, 0, 0, 1, 1],
            &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2],
            &[0, 0, 0, 2, b'h', b'i'],
            &[0, 0, 0, 1, 0],
            &[0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 5],
            &[0, 0, 0, 3, 1, 9, 9],
        ]
        .concat();
        assert_eq!(bytes, expected);
        let mut r = CanonicalReader::new(&bytes, b"tag\0").unwrap();
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u64("b").unwrap(), 2);
        assert_eq!(r.str("c").unwrap(), "hi");
        assert_eq!(r.opt_u64("d").unwrap(), None);
        assert_eq!(r.opt_u64("e").unwrap(), Some(5));
        assert_eq!(r.opt_fixed::<2>("f").unwrap(), Some([9, 9]));
        r.finish().unwrap();
    }

    #[test]
    fn strictness() {
        assert_eq!(
            CanonicalReader::new(b"tog\0", b"tag\0").unwrap_err(),
            DecodeError::DomainTag
        );
        let mut r = CanonicalReader::new(b"t\0\0\0\x05ab", b"t").unwrap();
        assert_eq!(
            r.field("x").unwrap_err(),
            DecodeError::Truncated { field: "x" }
        );
        let mut r = CanonicalReader::new(b"t\0\0\0\x02ab", b"t").unwrap();
        assert_eq!(
            r.u64("n").unwrap_err(),
            DecodeError::Length {
                field: "n",
                expected: 8,
                got: 2
            }
        );
        let mut r = CanonicalReader::new(b"t\0\0\0\x01\x02", b"t").unwrap();
        assert_eq!(
            r.opt_u64("o").unwrap_err(),
            DecodeError::OptionMarker { field: "o" }
        );
        let mut r = CanonicalReader::new(b"t\0\0\0\x02\x00\x01", b"t").unwrap();
        assert_eq!(
            r.opt_u64("o").unwrap_err(),
            DecodeError::OptionMarker { field: "o" }
        );
        let mut r = CanonicalReader::new(b"t\0\0\0\x01\xffz", b"t").unwrap();
        assert_eq!(r.str("s").unwrap_err(), DecodeError::Utf8 { field: "s" });
        assert_eq!(r.finish().unwrap_err(), DecodeError::Trailing(1));
    }
}
