//! Length-prefixed frames: a big-endian u32 byte count followed by that many bytes.
//!
//! Shared by the client and the daemon's server, so it depends on nothing but tokio's I/O
//! traits and knows nothing about what the bytes mean.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Read buffers grow in steps of at most this many bytes, so a peer that announces a large
/// frame and then stalls costs us no more memory than it has actually sent.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("connection closed in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly between frames.
/// A length above `max` is rejected before anything is allocated for it.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated { got, expected: 4 });
        }
        got += n;
    }
    let size = u32::from_be_bytes(header) as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let mut body = Vec::with_capacity(size.min(READ_CHUNK));
    let read = r.take(size as u64).read_to_end(&mut body).await?;
    if read < size {
        return Err(FrameError::Truncated {
            got: 4 + read,
            expected: 4 + size,
        });
    }
    Ok(Some(body))
}

/// Writes one frame and flushes it. A body longer than `u32::MAX` cannot be framed.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), FrameError> {
    let size = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge {
        size: bytes.len(),
        max: u32::MAX as usize,
    })?;
    // Small frames go out in one write so a reader never sees a header without its body
    // arriving in the same packet; big ones avoid the copy.
    if bytes.len() <= READ_CHUNK {
        let mut buf = Vec::with_capacity(4 + bytes.len());
        buf.extend_from_slice(&size.to_be_bytes());
        buf.extend_from_slice(bytes);
        w.write_all(&buf).await?;
    } else {
        w.write_all(&size.to_be_bytes()).await?;
        w.write_all(bytes).await?;
    }
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn round_trips_many_frames_back_to_back() {
        let mut wire = Vec::new();
        let bodies: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; i as usize * 7]).collect();
        for b in &bodies {
            write_frame(&mut wire, b).await.unwrap();
        }
        let mut r = wire.as_slice();
        for b in &bodies {
            assert_eq!(
                read_frame(&mut r, 1024).await.unwrap().as_deref(),
                Some(&b[..])
            );
        }
        assert!(read_frame(&mut r, 1024).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn header_is_big_endian_length() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"abc").await.unwrap();
        assert_eq!(wire, [0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[tokio::test]
    async fn zero_length_frame_is_a_frame_not_eof() {
        let wire = frame(b"");
        let mut r = wire.as_slice();
        assert_eq!(read_frame(&mut r, 10).await.unwrap(), Some(Vec::new()));
        assert_eq!(read_frame(&mut r, 10).await.unwrap(), None);
    }

    #[tokio::test]
    async fn frame_at_exactly_the_cap_is_accepted() {
        let wire = frame(&[9; 16]);
        let mut r = wire.as_slice();
        assert_eq!(read_frame(&mut r, 16).await.unwrap().unwrap().len(), 16);
    }

    #[tokio::test]
    async fn oversized_frame_is_rejected_without_reading_body() {
        // Announce 4 GiB - 1 with no body: the reader must refuse from the header alone.
        let wire = [0xff, 0xff, 0xff, 0xff];
        let mut r = &wire[..];
        match read_frame(&mut r, 1024).await {
            Err(FrameError::TooLarge { size, max }) => {
                assert_eq!(size, u32::MAX as usize);
                assert_eq!(max, 1024);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn eof_inside_header_is_truncation() {
        let wire = [0, 0];
        let mut r = &wire[..];
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::Truncated {
                got: 2,
                expected: 4
            })
        ));
    }

    #[tokio::test]
    async fn eof_inside_body_is_truncation() {
        let mut wire = frame(b"hello world");
        wire.truncate(8);
        let mut r = wire.as_slice();
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::Truncated {
                got: 8,
                expected: 15
            })
        ));
    }

    /// Hands out its data one byte per read, as a slow socket might.
    struct Trickle(Vec<u8>, usize);
    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if self.1 < self.0.len() {
                let b = self.0[self.1];
                buf.put_slice(&[b]);
                self.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_reads_are_reassembled() {
        let mut wire = frame(b"one");
        wire.extend(frame(&[7; 200_000]));
        let mut r = Trickle(wire, 0);
        assert_eq!(read_frame(&mut r, 1 << 20).await.unwrap().unwrap(), b"one");
        assert_eq!(
            read_frame(&mut r, 1 << 20).await.unwrap().unwrap(),
            vec![7; 200_000]
        );
        assert!(read_frame(&mut r, 1 << 20).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn large_frames_survive_a_small_pipe() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expected = body.clone();
        let writer = tokio::spawn(async move {
            write_frame(&mut a, &body).await.unwrap();
            write_frame(&mut a, b"tail").await.unwrap();
        });
        assert_eq!(
            read_frame(&mut b, 1 << 20).await.unwrap().unwrap(),
            expected
        );
        assert_eq!(read_frame(&mut b, 1 << 20).await.unwrap().unwrap(), b"tail");
        writer.await.unwrap();
        assert!(read_frame(&mut b, 1 << 20).await.unwrap().is_none());
    }
}
