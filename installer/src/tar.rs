//! A strict reader of the tar stream: POSIX ustar with PAX extended headers (long names, big
//! sizes and ids, `SCHILY.xattr.*`) and GNU long names. Our own rather than the `tar` crate
//! because the installer must refuse what the crate tolerates (unknown entry types, sparse
//! files, data after the end marker, sizes running past the end) with a message naming the
//! byte offset, and reads from the inflater's buffers without copying; it is about 300 lines.

use crate::error::Error;

pub const BLOCK: usize = 512;
/// Largest PAX header or GNU long name we accept.
const MAX_META: u64 = 16 << 20;

/// The tar stream: buffers from the inflater, consumed in order.
pub struct Stream<I> {
    source: I,
    current: Vec<u8>,
    /// Where buffers go once read (the inflater reuses them), if anywhere.
    spent: Option<Box<dyn FnMut(Vec<u8>)>>,
    pos: usize,
    offset: u64,
    /// Total size the manifest promises (for the "runs past the end" check).
    pub size: u64,
}

impl<I: Iterator<Item = Result<Vec<u8>, Error>>> Stream<I> {
    pub fn new(source: I, size: u64) -> Self {
        Stream {
            source,
            current: Vec::new(),
            spent: None,
            pos: 0,
            offset: 0,
            size,
        }
    }

    /// Hands every buffer, once read, to `spent` (for reuse by the source).
    pub fn recycling(mut self, spent: impl FnMut(Vec<u8>) + 'static) -> Self {
        self.spent = Some(Box::new(spent));
        self
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes at least one byte available; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, Error> {
        while self.pos == self.current.len() {
            match self.source.next() {
                None => return Ok(false),
                Some(buf) => {
                    let read = std::mem::replace(&mut self.current, buf?);
                    if let Some(spent) = self.spent.as_mut() {
                        spent(read);
                    }
                    self.pos = 0;
                }
            }
        }
        Ok(true)
    }

    /// Passes the next `len` bytes to `f` in slices.
    pub fn take(
        &mut self,
        mut len: u64,
        mut f: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), TarError> {
        while len > 0 {
            if !self.fill().map_err(TarError::Source)? {
                return Err(self.bad("the archive ends in the middle of an entry".into()));
            }
            let n = (self.current.len() - self.pos).min(usize::try_from(len).unwrap_or(usize::MAX));
            f(&self.current[self.pos..self.pos + n]).map_err(TarError::Source)?;
            self.pos += n;
            self.offset += n as u64;
            len -= n as u64;
        }
        Ok(())
    }

    fn read(&mut self, out: &mut [u8]) -> Result<(), TarError> {
        let mut at = 0;
        self.take(out.len() as u64, |s| {
            out[at..at + s.len()].copy_from_slice(s);
            at += s.len();
            Ok(())
        })
    }

    fn read_vec(&mut self, len: u64) -> Result<Vec<u8>, TarError> {
        let mut v = Vec::new();
        self.take(len, |s| {
            v.extend_from_slice(s);
            Ok(())
        })?;
        self.take(padding(len), |_| Ok(()))?;
        Ok(v)
    }

    /// Everything after the end marker must be zeros (the record padding).
    fn rest_is_zero(&mut self) -> Result<(), TarError> {
        loop {
            if !self.fill().map_err(TarError::Source)? {
                return Ok(());
            }
            let slice = &self.current[self.pos..];
            if slice.iter().any(|&b| b != 0) {
                return Err(self.bad("data follows the end-of-archive marker".into()));
            }
            self.offset += slice.len() as u64;
            self.pos = self.current.len();
        }
    }

    fn bad(&self, problem: String) -> TarError {
        TarError::Bad {
            offset: self.offset,
            problem,
        }
    }
}

pub fn padding(len: u64) -> u64 {
    (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64
}

#[derive(Debug)]
pub enum TarError {
    /// The inflater failed (a corrupt payload).
    Source(Error),
    Bad {
        offset: u64,
        problem: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    /// Target as written in the archive (checked and normalised by `rules`).
    HardLink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as written (checked and normalised by `rules`).
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Offset of the entry's first header block, for messages.
    pub offset: u64,
}

#[derive(Default)]
struct Extended {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads the next entry's headers; the caller then consumes `size` bytes of data with
/// [`skip_data`] or [`Stream::take`] followed by the padding. `None` at the end marker.
pub fn next_entry<I: Iterator<Item = Result<Vec<u8>, Error>>>(
    s: &mut Stream<I>,
) -> Result<Option<Entry>, TarError> {
    let mut ext = Extended::default();
    let start = s.offset();
    loop {
        let at = s.offset();
        let mut h = [0u8; BLOCK];
        if !s.fill().map_err(TarError::Source)? {
            return Err(s.bad("the archive ends without an end-of-archive marker".into()));
        }
        s.read(&mut h)?;
        if h.iter().all(|&b| b == 0) {
            s.rest_is_zero()?;
            return Ok(None);
        }
        let bad = |p: String| TarError::Bad {
            offset: at,
            problem: p,
        };
        check_checksum(&h).map_err(bad)?;
        let ustar = &h[257..263] == b"ustar\0" && &h[263..265] == b"00";
        let gnu = &h[257..265] == b"ustar  \0";
        if !ustar && !gnu {
            return Err(bad("not a ustar or PAX header".into()));
        }
        let size = ext
            .size
            .map_or_else(|| number(&h[124..136], "size"), Ok)
            .map_err(bad)?;
        let left = s.size.saturating_sub(s.offset());
        if size > left {
            return Err(bad(format!(
                "the header's size {size} runs past the end of the archive ({left} bytes left)"
            )));
        }
        let flag = h[156];
        match flag {
            b'x' | b'g' | b'L' | b'K' => {
                if size > MAX_META {
                    return Err(bad(format!("a {size}-byte extended header is absurd")));
                }
                let data = s.read_vec(size)?;
                match flag {
                    b'x' => parse_pax(&data, &mut ext).map_err(bad)?,
                    b'g' => {}
                    b'L' => ext.path = Some(cstr(&data).to_vec()),
                    _ => ext.linkpath = Some(cstr(&data).to_vec()),
                }
                continue;
            }
            _ => {}
        }
        let name = match ext.path.take() {
            Some(p) => p,
            None if ustar && h[345] != 0 => {
                let mut n = cstr(&h[345..500]).to_vec();
                n.push(b'/');
                n.extend_from_slice(cstr(&h[0..100]));
                n
            }
            None => cstr(&h[0..100]).to_vec(),
        };
        let link = ext
            .linkpath
            .take()
            .unwrap_or_else(|| cstr(&h[157..257]).to_vec());
        let device = || -> Result<(u32, u32), String> {
            Ok((
                small(number(&h[329..337], "devmajor")?)?,
                small(number(&h[337..345], "devminor")?)?,
            ))
        };
        let kind = match flag {
            b'0' | 0 | b'7' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink(link),
            b'1' => Kind::HardLink(link),
            b'3' => device().map(|(a, b)| Kind::Char(a, b)).map_err(bad)?,
            b'4' => device().map(|(a, b)| Kind::Block(a, b)).map_err(bad)?,
            b'6' => Kind::Fifo,
            b'S' => return Err(bad("sparse files are not supported".into())),
            other => return Err(bad(format!("unsupported entry type {:?}", other as char))),
        };
        if kind != Kind::File && size != 0 {
            return Err(bad(format!(
                "a non-file entry carries {size} bytes of data"
            )));
        }
        let mode = u32::try_from(number(&h[100..108], "mode").map_err(bad)? & 0o7777).unwrap_or(0);
        let uid = match ext.uid {
            Some(u) => u,
            None => small(number(&h[108..116], "uid").map_err(bad)?).map_err(bad)?,
        };
        let gid = match ext.gid {
            Some(g) => g,
            None => small(number(&h[116..124], "gid").map_err(bad)?).map_err(bad)?,
        };
        let (mtime, mtime_nsec) = match ext.mtime {
            Some(t) => t,
            None => (
                i64::try_from(number(&h[136..148], "mtime").map_err(bad)?).unwrap_or(i64::MAX),
                0,
            ),
        };
        return Ok(Some(Entry {
            name,
            kind,
            size,
            mode,
            uid,
            gid,
            mtime,
            mtime_nsec,
            xattrs: ext.xattrs,
            offset: start,
        }));
    }
}

/// Consumes an entry's data and padding without looking at it.
pub fn skip_data<I: Iterator<Item = Result<Vec<u8>, Error>>>(
    s: &mut Stream<I>,
    size: u64,
) -> Result<(), TarError> {
    s.take(size + padding(size), |_| Ok(()))
}

fn cstr(field: &[u8]) -> &[u8] {
    field
        .iter()
        .position(|&c| c == 0)
        .map_or(field, |n| &field[..n])
}

fn small(n: u64) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("{n} is too large for an id or device number"))
}

fn check_checksum(h: &[u8; BLOCK]) -> Result<(), String> {
    let want = number(&h[148..156], "checksum")?;
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if want != unsigned && i64::try_from(want).ok() != Some(signed) {
        return Err(format!(
            "header checksum mismatch (stored {want}, computed {unsigned})"
        ));
    }
    Ok(())
}

/// An octal field (spaces or NULs around it) or GNU's base-256 form.
fn number(field: &[u8], what: &str) -> Result<u64, String> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] != 0x80 {
            return Err(format!("negative {what}"));
        }
        let mut n = 0u64;
        for &b in &field[1..] {
            if n >> 56 != 0 {
                return Err(format!("{what} is too large"));
            }
            n = n << 8 | u64::from(b);
        }
        return Ok(n);
    }
    let text = cstr(field);
    let digits = text.trim_ascii();
    if digits.is_empty() {
        return Ok(0);
    }
    let mut n = 0u64;
    for &c in digits {
        if !(b'0'..=b'7').contains(&c) {
            return Err(format!("the {what} field is not an octal number"));
        }
        n = n
            .checked_mul(8)
            .ok_or_else(|| format!("{what} is too large"))?
            + u64::from(c - b'0');
    }
    Ok(n)
}

fn parse_pax(mut data: &[u8], ext: &mut Extended) -> Result<(), String> {
    let bad = |m: &str| format!("malformed PAX header: {m}");
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("bad length"))?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad("record length does not fit"));
        }
        let record = &data[space + 1..len - 1];
        data = &data[len..];
        let eq = record
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad("no '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let num = |v: &[u8]| -> Result<u64, String> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| bad("bad number"))
        };
        match key {
            b"path" => ext.path = Some(value.to_vec()),
            b"linkpath" => ext.linkpath = Some(value.to_vec()),
            b"size" => ext.size = Some(num(value)?),
            b"uid" => ext.uid = Some(small(num(value)?)?),
            b"gid" => ext.gid = Some(small(num(value)?)?),
            b"mtime" => ext.mtime = Some(pax_time(value).ok_or_else(|| bad("bad mtime"))?),
            _ if key.starts_with(b"SCHILY.xattr.") => {
                ext.xattrs.push((key[13..].to_vec(), value.to_vec()));
            }
            _ if key.starts_with(b"GNU.sparse.") => {
                return Err("sparse files are not supported".into())
            }
            _ => {}
        }
    }
    Ok(())
}

fn pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let text = std::str::from_utf8(v).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut nsec = 0u32;
    for (i, c) in frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .enumerate()
    {
        let _ = i;
        nsec = nsec * 10 + u32::from(c - b'0');
    }
    Some((secs, if secs < 0 { 0 } else { nsec }))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A reader that hands out the stream in tiny, uneven buffers (short reads).
    pub fn pieces(data: &[u8], step: usize) -> impl Iterator<Item = Result<Vec<u8>, Error>> {
        let v: Vec<Result<Vec<u8>, Error>> =
            data.chunks(step.max(1)).map(|c| Ok(c.to_vec())).collect();
        v.into_iter()
    }

    pub fn header(name: &str, flag: u8, size: u64, link: &str) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000001");
        h[156] = flag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        fix_checksum(&mut h);
        h
    }

    pub fn fix_checksum(h: &mut [u8; BLOCK]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    }

    pub fn archive(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(p);
            out.resize(out.len() + padding(p.len() as u64) as usize, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    fn read_all(data: &[u8], step: usize) -> Result<Vec<Entry>, TarError> {
        let mut s = Stream::new(pieces(data, step), data.len() as u64);
        let mut out = Vec::new();
        while let Some(e) = next_entry(&mut s)? {
            skip_data(&mut s, e.size)?;
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn every_buffer_read_goes_back_to_the_source() {
        let data = archive(&[&header("f", b'0', 1500, ""), &[7u8; 1500]]);
        let spent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let back = std::rc::Rc::clone(&spent);
        let mut s = Stream::new(pieces(&data, 1000), data.len() as u64)
            .recycling(move |buf| back.borrow_mut().push(buf));
        let e = next_entry(&mut s).expect("valid").expect("an entry");
        let mut content = Vec::new();
        s.take(e.size, |piece| {
            content.extend_from_slice(piece);
            Ok(())
        })
        .expect("data");
        assert_eq!(content, vec![7u8; 1500]);
        skip_data(&mut s, 0).expect("padding");
        assert!(next_entry(&mut s).expect("end").is_none());
        // The initial empty buffer and every piece but the one read last, in order.
        let spent = spent.borrow();
        let expected: Vec<Vec<u8>> = std::iter::once(Vec::new())
            .chain(data.chunks(1000).map(<[u8]>::to_vec))
            .take(spent.len())
            .collect();
        assert_eq!(*spent, expected);
        assert_eq!(spent.len(), data.len().div_ceil(1000));
    }

    #[test]
    fn reads_entries_through_short_reads() {
        let pax_body = b"30 path=a/very/long/name/here\n25 SCHILY.xattr.user.k=v\n";
        let data = archive(&[
            &header("dir/", b'5', 0, ""),
            &header("dir/file", b'0', 3, ""),
            b"abc",
            &header("././@PaxHeader", b'x', pax_body.len() as u64, ""),
            pax_body,
            &header("short", b'2', 0, "target"),
        ]);
        for step in [1, 7, 512, 100_000] {
            let entries = read_all(&data, step).expect("valid archive");
            assert_eq!(entries.len(), 3);
            assert_eq!(entries[1].size, 3);
            assert_eq!(entries[2].name, b"a/very/long/name/here");
            assert_eq!(entries[2].kind, Kind::Symlink(b"target".to_vec()));
            assert_eq!(entries[2].xattrs, vec![(b"user.k".to_vec(), b"v".to_vec())]);
        }
    }

    #[test]
    fn refuses_bad_checksum_absurd_size_truncation_and_trailing_data() {
        let mut h = header("f", b'0', 0, "");
        h[0] = b'g';
        assert!(
            read_all(&archive(&[&h]), 512).is_err_and(|e| format!("{e:?}").contains("checksum"))
        );
        let data = archive(&[&header("f", b'0', 0o77_777_777_777, "")]);
        assert!(read_all(&data, 512).is_err_and(|e| format!("{e:?}").contains("runs past the end")));
        let data = archive(&[&header("f", b'0', 1000, "")]);
        let cut = &data[..BLOCK + 100];
        let mut s = Stream::new(pieces(cut, 64), data.len() as u64);
        let e = next_entry(&mut s).expect("header").expect("entry");
        assert!(skip_data(&mut s, e.size).is_err());
        let mut data = archive(&[&header("f", b'0', 0, "")]);
        data.push(1);
        assert!(read_all(&data, 512).is_err_and(|e| format!("{e:?}").contains("end-of-archive")));
        assert!(read_all(&archive(&[&header("s", b'S', 0, "")]), 512).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0", "m"), Ok(0o644));
        assert_eq!(number(b"  755 \0", "m"), Ok(0o755));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0], "s"), Ok(256));
        assert!(number(b"12a", "m").is_err());
        assert_eq!(pax_time(b"12.5"), Some((12, 500_000_000)));
    }
}
