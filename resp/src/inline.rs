//! Inline commands (`SET k "a b"`), as telnet and `redis-cli` in pipe mode
//! send them.

use bytes::Bytes;

use crate::error::{protocol_error, ProtocolError};

/// Splits an inline command into arguments, honouring double and single
/// quotes and the escapes Redis accepts inside double quotes.
pub(crate) fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let unbalanced = || protocol_error("unbalanced quotes in request");
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut arg = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    let c = *line.get(i).ok_or_else(unbalanced)?;
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let e = *line.get(i).ok_or_else(unbalanced)?;
                            i += 1;
                            arg.push(match e {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                b'x' if i + 1 < line.len()
                                    && line[i].is_ascii_hexdigit()
                                    && line[i + 1].is_ascii_hexdigit() =>
                                {
                                    let hex = std::str::from_utf8(&line[i..i + 2]).unwrap_or("0");
                                    i += 2;
                                    u8::from_str_radix(hex, 16).unwrap_or(0)
                                }
                                other => other,
                            });
                        }
                        other => arg.push(other),
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let c = *line.get(i).ok_or_else(unbalanced)?;
                    i += 1;
                    if c == b'\'' {
                        break;
                    }
                    if c == b'\\' && line.get(i) == Some(&b'\'') {
                        arg.push(b'\'');
                        i += 1;
                    } else {
                        arg.push(c);
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
    Ok(args)
}
