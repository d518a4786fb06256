//! Just enough JSON to read the users a NixOS system declares (`users-groups.json`, the
//! toolkit's `spec.json`): a strict reader for RFC 8259 text, no writer. Files are small (the
//! tree lookups read at most 1 MiB); nesting is bounded so hostile input cannot overflow the
//! stack.

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// Members in file order; a repeated name keeps every occurrence (lookups take the last,
    /// as most readers do, Perl's JSON included).
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(n, _)| n == name).map(|m| &m.1),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

const MAX_DEPTH: usize = 64;

/// Parses a whole document; the error says what and at which byte.
pub fn parse(text: &[u8]) -> Result<Json, String> {
    let mut reader = Reader { text, pos: 0 };
    let value = reader.value(0)?;
    reader.blank();
    if reader.pos != text.len() {
        return Err(reader.fail("text after the JSON value"));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn fail(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn blank(&mut self) {
        while matches!(self.text.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nested too deeply"));
        }
        self.blank();
        match self.text.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.blank();
                if self.eat(b"}") {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.blank();
                    if self.text.get(self.pos) != Some(&b'"') {
                        return Err(self.fail("expected a member name"));
                    }
                    let name = self.string()?;
                    self.blank();
                    if !self.eat(b":") {
                        return Err(self.fail("expected ':'"));
                    }
                    members.push((name, self.value(depth + 1)?));
                    self.blank();
                    if self.eat(b"}") {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b",") {
                        return Err(self.fail("expected ',' or '}'"));
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.blank();
                if self.eat(b"]") {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.blank();
                    if self.eat(b"]") {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b",") {
                        return Err(self.fail("expected ',' or ']'"));
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') if self.eat(b"true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("expected a JSON value")),
            None => Err(self.fail("the text ends before a value")),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        while matches!(
            self.text.get(self.pos),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.text[start..self.pos])
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(Json::Number)
            .ok_or_else(|| self.fail("not a number"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.fail("expected four hex digits after \\u"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.text.get(self.pos) else {
                return Err(self.fail("a string is not closed"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.text.get(self.pos) else {
                        return Err(self.fail("a string is not closed"));
                    };
                    self.pos += 1;
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return Err(self.fail("unknown escape")),
                    };
                    if let Some(byte) = simple {
                        out.push(byte);
                        continue;
                    }
                    let mut code = self.hex4()?;
                    if (0xd800..0xdc00).contains(&code) && self.eat(b"\\u") {
                        let low = self.hex4()?;
                        if (0xdc00..0xe000).contains(&low) {
                            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                        }
                    }
                    let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                0..=0x1f => return Err(self.fail("a control character inside a string")),
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.fail("a string that is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_nixos_writes() {
        let doc = parse(
            br#" {"mutableUsers": true, "users": [{"name": "root", "uid": 0, "shell": "/run/current-system/sw/bin/bash", "hashedPassword": null}],
                "groups": [], "x": [1.5e3, -2, false, "a\"\\\/\u00e9\ud83d\ude00\n"]} "#,
        )
        .expect("valid JSON");
        assert_eq!(doc.get("mutableUsers"), Some(&Json::Bool(true)));
        let Some(Json::Array(users)) = doc.get("users") else {
            panic!("users")
        };
        assert_eq!(
            users[0].get("shell").and_then(Json::as_str),
            Some("/run/current-system/sw/bin/bash")
        );
        assert_eq!(users[0].get("hashedPassword"), Some(&Json::Null));
        assert_eq!(
            doc.get("x"),
            Some(&Json::Array(vec![
                Json::Number(1500.0),
                Json::Number(-2.0),
                Json::Bool(false),
                Json::String("a\"\\/é😀\n".into())
            ]))
        );
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\" 1}",
            b"[1,]",
            b"\"open",
            b"tru",
            b"{} x",
            b"\"\x01\"",
            b"\"\\q\"",
            &[b'['; 100],
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
