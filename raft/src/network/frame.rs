//! Length-prefixed frames: a big-endian u32 length, then a postcard payload.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// Largest frame accepted. Large enough for a log batch holding one maximal
/// Redis value; the buffer grows with the bytes that actually arrive, so a
/// lying length prefix cannot make us allocate it up front.
pub const MAX_FRAME: usize = 600 * 1024 * 1024;

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(Error::FrameTooLarge(len));
    }
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    let read = reader.take(len as u64).read_to_end(&mut buf).await?;
    if read != len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(buf))
}

/// Writes one frame (without flushing).
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, payload: &[u8]) -> Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(Error::FrameTooLarge(payload.len()));
    }
    writer
        .write_all(&(payload.len() as u32).to_be_bytes())
        .await?;
    writer.write_all(payload).await?;
    Ok(())
}

/// Decodes a frame payload; never panics on hostile input.
pub fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T> {
    postcard::from_bytes(payload).map_err(Error::decode("rpc frame"))
}

pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(Error::encode("rpc frame"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lying_length_is_rejected_without_allocation() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut input).await,
            Err(Error::FrameTooLarge(_))
        ));
        let mut truncated: &[u8] = &[0, 0, 0, 10, 1, 2];
        assert!(read_frame(&mut truncated).await.is_err());
        let mut empty: &[u8] = &[];
        assert!(matches!(read_frame(&mut empty).await, Ok(None)));
    }
}
