//! Decoding tar headers: one 512-byte header block plus the extension
//! records before it (PAX, global PAX, GNU long name and long link) into a
//! [`TarEntry`]; the numeric fields (octal, GNU base-256), the checksum, PAX
//! records and PAX times.
//!
//! Invariants (the input is untrusted): pure functions of the bytes given,
//! never a panic, every failure a short message for the reader to prefix
//! with the blob and entry; extension data is bounded by the reader
//! ([`MAX_EXTENSION_BYTES`]) before it gets here; sparse and unknown entry
//! types are refused rather than misread.

use std::collections::BTreeMap;

use super::entry::{check_path, EntryType, TarEntry};
pub use crate::limits::MAX_TAR_EXTENSION_BYTES as MAX_EXTENSION_BYTES;

/// The tar block size.
pub(super) const BLOCK: usize = 512;

/// Decode one header block (entry number `index`) plus its extension
/// records: global PAX, then local PAX, GNU long name and long link.
pub(super) fn decode(
    b: &[u8; BLOCK],
    index: usize,
    global_pax: &BTreeMap<String, Vec<u8>>,
    local: BTreeMap<String, Vec<u8>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    ext: Vec<&'static str>,
) -> std::result::Result<TarEntry, String> {
    let mut pax = global_pax.clone();
    pax.extend(local);
    let magic = &b[257..265];
    let base = if magic == b"ustar\x0000" {
        "ustar"
    } else if magic == b"ustar  \0" {
        "gnu"
    } else if magic.starts_with(b"ustar") {
        return Err(format!(
            "unknown tar header magic {:?}",
            String::from_utf8_lossy(magic)
        ));
    } else {
        "v7"
    };
    let mut format = base.to_string();
    for x in &ext {
        format.push('+');
        format.push_str(x);
    }
    let field_str = |bytes: &[u8], what: &str| -> std::result::Result<String, String> {
        String::from_utf8(trim_nul(bytes).to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    };
    let name_bytes = if let Some(p) = pax.get("path") {
        p.clone()
    } else if let Some(l) = long_name {
        l
    } else if base == "ustar" && b[345] != 0 {
        let mut v = trim_nul(&b[345..500]).to_vec();
        v.push(b'/');
        v.extend_from_slice(trim_nul(&b[0..100]));
        v
    } else {
        trim_nul(&b[0..100]).to_vec()
    };
    let name = String::from_utf8(name_bytes).map_err(|_| "entry name is not UTF-8")?;
    let path = check_path(&name)?;
    let link_bytes = if let Some(p) = pax.get("linkpath") {
        p.clone()
    } else if let Some(l) = long_link {
        l
    } else {
        trim_nul(&b[157..257]).to_vec()
    };
    let linkname =
        String::from_utf8(link_bytes).map_err(|_| format!("{path}: link target is not UTF-8"))?;
    if linkname.contains('\0') {
        return Err(format!("{path}: link target contains NUL"));
    }
    let kind = match b[156] {
        b'0' | 0 | b'7' if name.ends_with('/') => EntryType::Dir,
        b'0' | 0 | b'7' => EntryType::File,
        b'1' => EntryType::Hardlink,
        b'2' => EntryType::Symlink,
        b'3' => EntryType::CharDevice,
        b'4' => EntryType::BlockDevice,
        b'5' => EntryType::Dir,
        b'6' => EntryType::Fifo,
        b'S' => return Err(format!("{path}: GNU sparse entries are not supported")),
        f => {
            return Err(format!(
                "{path}: unsupported entry type {:?}",
                char::from(f).escape_default().to_string()
            ))
        }
    };
    if pax.keys().any(|k| k.starts_with("GNU.sparse.")) {
        return Err(format!("{path}: PAX sparse entries are not supported"));
    }
    if kind == EntryType::Hardlink {
        check_path(&linkname).map_err(|m| format!("{path}: hard link target: {m}"))?;
    }
    let num = |key: &str, field: &[u8]| -> std::result::Result<u64, String> {
        match pax.get(key) {
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("{path}: PAX {key} is not a number")),
            None => parse_number(field).map_err(|m| format!("{path}: {m}")),
        }
    };
    let pax_size = num("size", &b[124..136])?;
    let (mtime, mtime_nanos) = match pax.get("mtime") {
        Some(v) => parse_pax_time(v).ok_or_else(|| format!("{path}: PAX mtime is invalid"))?,
        None => (
            parse_signed(&b[136..148]).map_err(|m| format!("{path}: {m}"))?,
            0,
        ),
    };
    let text = |key: &str, field: &[u8]| -> std::result::Result<String, String> {
        match pax.get(key) {
            Some(v) => {
                String::from_utf8(v.clone()).map_err(|_| format!("{path}: PAX {key} is not UTF-8"))
            }
            None => field_str(field, key).map_err(|m| format!("{path}: {m}")),
        }
    };
    let (uname, gname) = if base == "v7" {
        (String::new(), String::new())
    } else {
        (text("uname", &b[265..297])?, text("gname", &b[297..329])?)
    };
    let (devmajor, devminor) = if base == "v7" {
        (0, 0)
    } else {
        (
            parse_number(&b[329..337]).map_err(|m| format!("{path}: devmajor: {m}"))?,
            parse_number(&b[337..345]).map_err(|m| format!("{path}: devminor: {m}"))?,
        )
    };
    let mut records = BTreeMap::new();
    let mut xattrs = BTreeMap::new();
    for (k, v) in &pax {
        if let Some(x) = k
            .strip_prefix("SCHILY.xattr.")
            .or_else(|| k.strip_prefix("LIBARCHIVE.xattr."))
        {
            xattrs.insert(x.to_string(), v.clone());
        } else {
            records.insert(k.clone(), String::from_utf8_lossy(v).into_owned());
        }
    }
    let uid = num("uid", &b[108..116])?;
    let gid = num("gid", &b[116..124])?;
    let mode = u32::try_from(parse_number(&b[100..108]).map_err(|m| format!("{path}: mode: {m}"))?)
        .map_err(|_| format!("{path}: mode out of range"))?;
    Ok(TarEntry {
        index,
        name,
        path,
        kind,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtime,
        mtime_nanos,
        size: if kind.has_data() { pax_size } else { 0 },
        linkname,
        devmajor,
        devminor,
        pax: records,
        xattrs,
        format,
    })
}

pub(super) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

pub(super) fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

pub(super) fn check_checksum(b: &[u8; BLOCK]) -> std::result::Result<(), String> {
    let stored = parse_number(&b[148..156]).map_err(|m| format!("header checksum: {m}"))?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { x };
        unsigned += u64::from(x);
        signed += i64::from(x as i8);
    }
    // Why signed too: some historic tars summed signed chars (POSIX allows reading both).
    if stored == unsigned || i64::try_from(stored).ok() == Some(signed) {
        Ok(())
    } else {
        Err(format!(
            "header checksum mismatch (not a tar header, or corrupt): stored {stored}, computed {unsigned}"
        ))
    }
}

/// A numeric header field: octal text (NUL/space padded) or GNU base-256.
pub(super) fn parse_number(field: &[u8]) -> std::result::Result<u64, String> {
    let v = parse_signed(field)?;
    u64::try_from(v).map_err(|_| "negative number in a header field".to_string())
}

fn parse_signed(field: &[u8]) -> std::result::Result<i64, String> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            // Base-256, two's complement (0xff leading = negative).
            let neg = first == 0xff;
            let mut v: i128 = if neg { -1 } else { i128::from(first & 0x7f) };
            for &b in &field[1..] {
                v = v
                    .checked_mul(256)
                    .and_then(|x| x.checked_add(i128::from(b)))
                    .ok_or("base-256 number out of range")?;
                if v.abs() > i128::from(i64::MAX) {
                    return Err("base-256 number out of range".to_string());
                }
            }
            return i64::try_from(v).map_err(|_| "base-256 number out of range".to_string());
        }
    }
    let s = trim_nul(field);
    let s: Vec<u8> = s
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|&c| c != b' ')
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let mut v: i64 = 0;
    for c in s {
        if !(b'0'..=b'7').contains(&c) {
            return Err(format!(
                "invalid octal number {:?}",
                String::from_utf8_lossy(field)
            ));
        }
        v = v
            .checked_mul(8)
            .and_then(|x| x.checked_add(i64::from(c - b'0')))
            .ok_or("octal number out of range")?;
    }
    Ok(v)
}

/// PAX records: `"<len> <key>=<value>\n"`, len counting the whole record.
pub(super) fn parse_pax(
    mut data: &[u8],
    out: &mut BTreeMap<String, Vec<u8>>,
) -> std::result::Result<(), String> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record (no length)")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PAX record length")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("malformed PAX record (length does not match)".to_string());
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("malformed PAX record (no '=')")?;
        let key = std::str::from_utf8(&rec[..eq])
            .map_err(|_| "PAX record key is not UTF-8".to_string())?;
        if key.is_empty() {
            return Err("PAX record with an empty key".to_string());
        }
        let value = &rec[eq + 1..];
        if value.is_empty() {
            // POSIX: an empty value deletes the record (and the global one).
            out.remove(key);
        } else {
            out.insert(key.to_string(), value.to_vec());
        }
        data = &data[len..];
    }
    Ok(())
}

/// A PAX time `secs[.frac]` (possibly negative) → (seconds, nanoseconds).
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().ok()?;
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0").unwrap(), 0o644);
        assert_eq!(parse_number(b"  644 \0\0").unwrap(), 0o644);
        assert_eq!(parse_number(b"\0\0\0\0").unwrap(), 0);
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert_eq!(parse_signed(&[0xff, 0xff, 0xff, 0xff]).unwrap(), -1);
        assert!(parse_number(b"12x\0").is_err());
        assert!(
            parse_number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        assert_eq!(parse_pax_time(b"1.5").unwrap(), (1, 500_000_000));
        assert_eq!(parse_pax_time(b"-3").unwrap(), (-3, 0));
    }
}
