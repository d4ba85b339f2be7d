//! Redis-style glob matching for KEYS, SCAN MATCH and ACL key patterns.

/// Matches `text` against a Redis glob: `*`, `?`, `[abc]`, `[^a-z]`, and `\`
/// escapes, byte-wise, as Redis's `stringmatchlen` does.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear in practice and
    // never recursive, so a hostile pattern cannot exhaust the stack.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                literal => {
                    if literal == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches one byte against the class starting at `pattern[start] == b'['`.
/// Returns whether it matched and the index after the class.
fn match_class(pattern: &[u8], start: usize, byte: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        let c = *pattern.get(i)?;
        if c == b']' {
            break;
        }
        if c == b'\\' && i + 1 < pattern.len() {
            if pattern[i + 1] == byte {
                matched = true;
            }
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (lo, hi) = if c <= pattern[i + 2] {
                (c, pattern[i + 2])
            } else {
                (pattern[i + 2], c)
            };
            if (lo..=hi).contains(&byte) {
                matched = true;
            }
            i += 3;
        } else {
            if c == byte {
                matched = true;
            }
            i += 1;
        }
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn matches_like_redis() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"user:\\*", b"user:*"));
        assert!(!glob_match(b"user:\\*", b"user:x"));
        assert!(glob_match(b"rl:*:ip", b"rl:1.2.3.4:ip"));
        assert!(!glob_match(b"a*b", b"acd"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"x"));
    }
}
