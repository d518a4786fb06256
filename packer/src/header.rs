//! Tar headers built field by field: POSIX ustar with a PAX extended header in front whenever
//! a value does not fit (long names and link targets, sizes of 8 GiB and more, big ids) or
//! cannot be said in ustar at all (xattrs, as `SCHILY.xattr.NAME` like GNU tar and bsdtar).
//! Nothing comes from the machine: user and group names are empty, times are clamped.

use crate::entry::{Kind, Meta};

pub const BLOCK: usize = 512;

/// Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1.
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// Largest value of a 7-digit octal field (uid, gid, device numbers).
const MAX_OCTAL_7: u64 = 0o777_7777;
const NAME_LEN: usize = 100;

/// The bytes of every header block (PAX header and its records, then the ustar header) that
/// precede the entry's data. `mtime_limit` is `SOURCE_DATE_EPOCH`: later times are clamped
/// to it, earlier ones before 1970 to 0.
pub fn header_bytes(meta: &Meta, mtime_limit: i64) -> Vec<u8> {
    let name = tar_name(meta);
    let mtime = meta.mtime.clamp(0, mtime_limit.max(0)) as u64;
    let (size, link): (u64, &[u8]) = match &meta.kind {
        Kind::File { size } => (*size, b""),
        Kind::HardLink { target } | Kind::Symlink { target } => (0, target),
        _ => (0, b""),
    };

    let mut pax = Vec::new();
    if name.len() > NAME_LEN {
        pax_record(&mut pax, b"path", &name);
    }
    if link.len() > NAME_LEN {
        pax_record(&mut pax, b"linkpath", link);
    }
    if size > MAX_OCTAL_11 {
        pax_record(&mut pax, b"size", size.to_string().as_bytes());
    }
    if meta.uid > MAX_OCTAL_7 {
        pax_record(&mut pax, b"uid", meta.uid.to_string().as_bytes());
    }
    if meta.gid > MAX_OCTAL_7 {
        pax_record(&mut pax, b"gid", meta.gid.to_string().as_bytes());
    }
    if mtime > MAX_OCTAL_11 {
        pax_record(&mut pax, b"mtime", mtime.to_string().as_bytes());
    }
    for (key, value) in &meta.xattrs {
        let mut full = b"SCHILY.xattr.".to_vec();
        full.extend_from_slice(key);
        pax_record(&mut pax, &full, value);
    }
    // Names that are not UTF-8 are kept byte for byte; PAX wants that said.
    let binary = (name.len() > NAME_LEN && std::str::from_utf8(&name).is_err())
        || (link.len() > NAME_LEN && std::str::from_utf8(link).is_err());
    if binary {
        let mut with_charset = Vec::new();
        pax_record(&mut with_charset, b"hdrcharset", b"BINARY");
        with_charset.extend_from_slice(&pax);
        pax = with_charset;
    }

    let mut out = Vec::with_capacity(BLOCK * 2 + pax.len());
    if !pax.is_empty() {
        let pax_header = ustar(
            b"././@PaxHeader",
            b'x',
            0o644,
            0,
            0,
            pax.len() as u64,
            mtime,
            b"",
            (0, 0),
            false,
        );
        out.extend_from_slice(&pax_header);
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    let (flag, devices) = match &meta.kind {
        Kind::File { .. } => (b'0', None),
        Kind::HardLink { .. } => (b'1', None),
        Kind::Symlink { .. } => (b'2', None),
        Kind::Char { major, minor } => (b'3', Some((*major, *minor))),
        Kind::Block { major, minor } => (b'4', Some((*major, *minor))),
        Kind::Dir => (b'5', None),
        Kind::Fifo => (b'6', None),
    };
    out.extend_from_slice(&ustar(
        &name,
        flag,
        meta.mode & 0o7777,
        meta.uid,
        meta.gid,
        size,
        mtime,
        link,
        devices.unwrap_or((0, 0)),
        devices.is_some(),
    ));
    out
}

/// The name as it appears in the archive: `./` for the root, `dir/` for directories.
fn tar_name(meta: &Meta) -> Vec<u8> {
    let mut name = if meta.path.is_empty() {
        b".".to_vec()
    } else {
        meta.path.clone()
    };
    if meta.kind == Kind::Dir {
        name.push(b'/');
    }
    name
}

/// Zero bytes after `len` bytes of data up to the next block boundary.
pub fn padding(len: u64) -> usize {
    ((BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64) as usize
}

/// One `LEN key=value\n` record; LEN counts the whole record including its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[allow(clippy::too_many_arguments)]
fn ustar(
    name: &[u8],
    flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &[u8],
    (major, minor): (u32, u32),
    device: bool,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    copy_truncated(&mut h[0..100], name);
    octal(&mut h[100..108], u64::from(mode));
    // Values too big for a field were said in the PAX header; the field then holds 0.
    octal(&mut h[108..116], if uid > MAX_OCTAL_7 { 0 } else { uid });
    octal(&mut h[116..124], if gid > MAX_OCTAL_7 { 0 } else { gid });
    octal(&mut h[124..136], if size > MAX_OCTAL_11 { 0 } else { size });
    octal(
        &mut h[136..148],
        if mtime > MAX_OCTAL_11 { 0 } else { mtime },
    );
    h[156] = flag;
    copy_truncated(&mut h[157..257], link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // uname and gname stay empty: ownership is numeric only.
    if device {
        octal(&mut h[329..337], u64::from(major).min(MAX_OCTAL_7));
        octal(&mut h[337..345], u64::from(minor).min(MAX_OCTAL_7));
    }
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal filling all but the last byte of the field, which is NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn file(path: &[u8], size: u64) -> Meta {
        Meta::owned_by_root(path, Kind::File { size }, 0o644, 100)
    }

    /// Reads the archive made of `header` plus zero data and padding back with the tar crate:
    /// (header, path, link target, xattrs, size).
    #[allow(clippy::type_complexity)]
    fn read_back(
        meta: &Meta,
        data_len: usize,
    ) -> (tar::Header, Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>, u64) {
        let mut bytes = header_bytes(meta, 1_000);
        bytes.resize(bytes.len() + data_len + padding(data_len as u64), 0);
        bytes.resize(bytes.len() + 2 * BLOCK, 0);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().expect("entries");
        let mut entry = entries.next().expect("one entry").expect("readable");
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().expect("pax") {
            for ext in pax {
                let ext = ext.expect("record");
                if let Some(name) = ext.key().expect("utf-8 key").strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                }
            }
        }
        let path = entry.path_bytes().into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let size = entry.size();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data");
        assert_eq!(data.len() as u64, size);
        (entry.header().clone(), path, link, xattrs, size)
    }

    #[test]
    fn short_entries_are_plain_ustar_with_numeric_owners_and_no_names() {
        let mut meta = file(b"etc/passwd", 3);
        meta.uid = 1000;
        meta.gid = 100;
        meta.mode = 0o4755;
        let bytes = header_bytes(&meta, 1_000);
        assert_eq!(bytes.len(), BLOCK, "no PAX header needed");
        let (header, path, _, _, size) = read_back(&meta, 3);
        assert_eq!(path, b"etc/passwd");
        assert_eq!(header.mode().expect("mode"), 0o4755);
        assert_eq!(
            (header.uid().expect("uid"), header.gid().expect("gid")),
            (1000, 100)
        );
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        assert_eq!(size, 3);
        assert_eq!(&bytes[257..265], b"ustar\x0000");
    }

    #[test]
    fn mtime_is_clamped_to_the_epoch_and_never_negative() {
        let mut meta = file(b"x", 0);
        meta.mtime = 5_000;
        assert_eq!(read_back(&meta, 0).0.mtime().expect("mtime"), 1_000);
        meta.mtime = -7;
        assert_eq!(read_back(&meta, 0).0.mtime().expect("mtime"), 0);
        meta.mtime = 1;
        assert_eq!(read_back(&meta, 0).0.mtime().expect("mtime"), 1);
    }

    #[test]
    fn long_names_and_link_targets_go_to_pax() {
        let long = [b'n'; 180].to_vec();
        let mut name = b"nix/store/".to_vec();
        name.extend_from_slice(&long);
        let (_, path, _, _, _) = read_back(&file(&name, 0), 0);
        assert_eq!(path, name);

        let target = [b't'; 300].to_vec();
        let meta = Meta::owned_by_root(
            b"l",
            Kind::Symlink {
                target: target.clone(),
            },
            0o777,
            0,
        );
        let (header, _, link, _, _) = read_back(&meta, 0);
        assert_eq!(link, target);
        assert_eq!(header.entry_type(), tar::EntryType::Symlink);
    }

    #[test]
    fn names_that_are_not_utf8_survive_short_and_long() {
        let short = b"caf\xe9".to_vec();
        assert_eq!(read_back(&file(&short, 0), 0).1, short);
        let mut long = [b'x'; 120].to_vec();
        long.extend_from_slice(b"\xff\xfe");
        let bytes = header_bytes(&file(&long, 0), 0);
        assert!(bytes.windows(17).any(|w| w == b"hdrcharset=BINARY"));
        assert_eq!(read_back(&file(&long, 0), 0).1, long);
    }

    #[test]
    fn xattrs_are_schily_records_with_binary_values() {
        let mut meta = file(b"bin/ping", 0);
        let capability = vec![
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        meta.xattrs = vec![
            (b"security.capability".to_vec(), capability.clone()),
            (b"user.note".to_vec(), b"a=b c".to_vec()),
        ];
        let (_, _, _, xattrs, _) = read_back(&meta, 0);
        assert_eq!(
            xattrs,
            vec![
                ("security.capability".to_owned(), capability),
                ("user.note".to_owned(), b"a=b c".to_vec())
            ]
        );
    }

    #[test]
    fn sizes_of_8_gib_and_more_go_to_pax() {
        let size = 8 * 1024 * 1024 * 1024 + 5;
        let bytes = header_bytes(&file(b"big", size), 0);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("19 size=8589934597\n"), "PAX size record");
        // The tar crate applies the PAX size over the ustar field.
        let mut archive_bytes = bytes.clone();
        archive_bytes.resize(archive_bytes.len() + BLOCK, 0);
        let mut archive = tar::Archive::new(&archive_bytes[..]);
        let entry = archive
            .entries()
            .expect("entries")
            .next()
            .expect("entry")
            .expect("ok");
        assert_eq!(entry.size(), size);
        // Just under the limit still fits the octal field.
        assert_eq!(header_bytes(&file(b"big", MAX_OCTAL_11), 0).len(), BLOCK);
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", &[b'a'; 91]);
        assert_eq!(&out[..4], b"101 ");
        assert_eq!(out.len(), 101);
        let mut out = Vec::new();
        pax_record(&mut out, b"k", b"v");
        assert_eq!(out, b"6 k=v\n");
    }

    #[test]
    fn devices_fifos_and_directories() {
        let dev = Meta::owned_by_root(b"dev/null", Kind::Char { major: 1, minor: 3 }, 0o666, 0);
        let (h, _, _, _, _) = read_back(&dev, 0);
        assert_eq!(h.entry_type(), tar::EntryType::Char);
        assert_eq!(
            (
                h.device_major().expect("major"),
                h.device_minor().expect("minor")
            ),
            (Some(1), Some(3))
        );
        let dir = Meta::owned_by_root(b"tmp", Kind::Dir, 0o1777, 0);
        let (h, path, _, _, _) = read_back(&dir, 0);
        assert_eq!(path, b"tmp/");
        assert_eq!(h.mode().expect("mode"), 0o1777);
        let root = Meta::owned_by_root(b"", Kind::Dir, 0o755, 0);
        assert_eq!(read_back(&root, 0).1, b"./");
        let fifo = Meta::owned_by_root(b"run/f", Kind::Fifo, 0o600, 0);
        assert_eq!(read_back(&fifo, 0).0.entry_type(), tar::EntryType::Fifo);
    }
}
