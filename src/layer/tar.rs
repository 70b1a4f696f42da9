//! The tar dialect strata writes: one fixed encoding, every field explicit.
//!
//! - ustar headers (`ustar\0` magic, version `00`), numeric fields as
//!   zero-padded octal terminated by NUL, checksum as 6 octal digits, NUL, space;
//! - one long-name policy: when a name, link name, size, uid or gid does not fit
//!   a ustar field, a PAX extended header (`x`) precedes the entry, with records
//!   sorted by key and the fixed name `././@PaxHeader` (GNU tar derives it from
//!   its pid, which would leak into the bytes). The ustar `prefix` field is never
//!   used, so there is exactly one way to encode any path;
//! - no atime/ctime/fractional-time records, no sparse entries; xattrs only
//!   when the caller passes them (then as `SCHILY.xattr.<name>` PAX records,
//!   sorted with the others by key, values byte for byte); uname/gname as
//!   given (empty by default); device numbers zero except on device entries;
//! - end of archive: two zero blocks, no padding to a 10240-byte record (the
//!   padding carries no information and only grows the blob).
//!
//! Nothing here reads file metadata: the caller passes every field.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// The entry types strata writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    /// Regular file (`0`).
    File,
    /// Hard link (`1`) to an earlier entry.
    Hardlink,
    /// Symbolic link (`2`).
    Symlink,
    /// Directory (`5`).
    Dir,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// FIFO (`6`).
    Fifo,
}

impl TarKind {
    fn flag(self) -> u8 {
        match self {
            TarKind::File => b'0',
            TarKind::Hardlink => b'1',
            TarKind::Symlink => b'2',
            TarKind::Dir => b'5',
            TarKind::CharDevice => b'3',
            TarKind::BlockDevice => b'4',
            TarKind::Fifo => b'6',
        }
    }
}

/// Everything one header says.
#[derive(Debug, Clone)]
pub struct TarHeader<'a> {
    /// Entry name as stored (directories end in `/`).
    pub name: &'a str,
    /// Entry type.
    pub kind: TarKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name (usually empty).
    pub uname: &'a str,
    /// Owner group name (usually empty).
    pub gname: &'a str,
    /// Content size (regular files only).
    pub size: u64,
    /// Modification time, whole seconds since the epoch.
    pub mtime: u64,
    /// Link target (symlinks and hard links).
    pub linkname: &'a str,
}

/// What few entries carry beyond [`TarHeader`]: device numbers and xattrs.
#[derive(Debug, Clone, Copy, Default)]
pub struct TarExtra<'a> {
    /// Device major number (device entries only).
    pub devmajor: u32,
    /// Device minor number (device entries only).
    pub devminor: u32,
    /// Extended attributes, sorted by name.
    pub xattrs: Option<&'a BTreeMap<String, Vec<u8>>>,
}

/// Fixed name of PAX extended headers (see module docs).
pub const PAX_HEADER_NAME: &str = "././@PaxHeader";

const BLOCK: usize = 512;

/// Largest value an octal field of `width` bytes (with NUL) holds.
fn octal_max(width: usize) -> u64 {
    (1u64 << (3 * (width as u32 - 1))) - 1
}

/// `value` as zero-padded octal digits filling `field` but its last byte,
/// which is NUL. Callers clamp `value` to [`octal_max`] of the width.
fn put_octal(field: &mut [u8], value: u64) {
    let (digits, nul) = field.split_at_mut(field.len() - 1);
    nul[0] = 0;
    let mut v = value;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    assert_eq!(v, 0, "{value} overflows a {}-byte octal field", field.len());
}

fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// Encode one 512-byte ustar header (fields that overflow are clamped; the
/// caller puts the real values in PAX records first).
fn encode_ustar(h: &TarHeader<'_>, x: &TarExtra<'_>) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], h.name.as_bytes());
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    put_octal(&mut b[108..116], h.uid.min(octal_max(8)));
    put_octal(&mut b[116..124], h.gid.min(octal_max(8)));
    let size = if h.size > octal_max(12) { 0 } else { h.size };
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], h.mtime.min(octal_max(12)));
    b[156] = h.kind.flag();
    put_str(&mut b[157..257], h.linkname.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_str(&mut b[265..297], h.uname.as_bytes());
    put_str(&mut b[297..329], h.gname.as_bytes());
    // Why clamp: Linux majors (12 bits) and minors (20 bits) fit 7 octal digits.
    put_octal(&mut b[329..337], u64::from(x.devmajor).min(octal_max(8)));
    put_octal(&mut b[337..345], u64::from(x.devminor).min(octal_max(8)));
    fix_checksum(&mut b);
    b
}

/// One PAX record: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body_len + 1;
    loop {
        let total = len.to_string().len() + body_len;
        if total == len {
            break;
        }
        len = total;
    }
    let mut r = Vec::with_capacity(len);
    r.extend_from_slice(format!("{len} {key}=").as_bytes());
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// The PAX records `h` needs, sorted by key; empty when ustar suffices.
fn pax_records(h: &TarHeader<'_>, x: &TarExtra<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    // `SCHILY.xattr.*` sorts before every lowercase key below.
    for (name, value) in x.xattrs.into_iter().flatten() {
        out.extend(pax_record(&format!("SCHILY.xattr.{name}"), value));
    }
    let mut recs: Vec<(&str, String)> = Vec::new();
    if h.gid > octal_max(8) {
        recs.push(("gid", h.gid.to_string()));
    }
    if h.linkname.len() > 100 {
        recs.push(("linkpath", h.linkname.to_string()));
    }
    if h.name.len() > 100 {
        recs.push(("path", h.name.to_string()));
    }
    if h.size > octal_max(12) {
        recs.push(("size", h.size.to_string()));
    }
    if h.uid > octal_max(8) {
        recs.push(("uid", h.uid.to_string()));
    }
    // Already in key order: gid < linkpath < path < size < uid.
    out.extend(recs.iter().flat_map(|(k, v)| pax_record(k, v.as_bytes())));
    out
}

/// Write the header(s) for one entry. File content follows, then [`write_padding`].
pub fn write_header(w: &mut impl Write, h: &TarHeader<'_>) -> io::Result<()> {
    write_header_with(w, h, &TarExtra::default())
}

/// [`write_header`] for an entry with device numbers or xattrs.
pub fn write_header_with(
    w: &mut impl Write,
    h: &TarHeader<'_>,
    x: &TarExtra<'_>,
) -> io::Result<()> {
    let pax = pax_records(h, x);
    if !pax.is_empty() {
        let ph = TarHeader {
            name: PAX_HEADER_NAME,
            kind: TarKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: "",
            gname: "",
            size: pax.len() as u64,
            mtime: h.mtime,
            linkname: "",
        };
        let mut block = encode_ustar(&ph, &TarExtra::default());
        block[156] = b'x';
        fix_checksum(&mut block);
        w.write_all(&block)?;
        w.write_all(&pax)?;
        write_padding(w, pax.len() as u64)?;
    }
    w.write_all(&encode_ustar(h, x))
}

/// Checksum: the sum of all header bytes with the checksum field read as
/// spaces, as 6 octal digits, NUL, space.
fn fix_checksum(b: &mut [u8; BLOCK]) {
    b[148..156].copy_from_slice(b"        ");
    // At most 512 * 255 < 8^6: six digits always hold it.
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    put_octal(&mut b[148..155], u64::from(sum));
    b[155] = b' ';
}

/// Zero padding after `size` content bytes, up to the next 512-byte boundary.
pub fn write_padding(w: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub fn write_end(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(name: &str) -> TarHeader<'_> {
        TarHeader {
            name,
            kind: TarKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: "",
            gname: "",
            size: 3,
            mtime: 0,
            linkname: "",
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        // Lengths crossing a digit boundary: 97 + 2 digits = 99; 98 + 2 = 100 needs 3.
        for n in 80..120 {
            let r = pax_record("path", "x".repeat(n).as_bytes());
            let s = String::from_utf8(r.clone()).unwrap();
            let declared: usize = s.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(declared, r.len(), "{s}");
        }
    }

    #[test]
    fn readable_by_tar_crate_including_long_names() {
        let long = format!("{}/file", "d".repeat(150));
        let mut buf = Vec::new();
        for name in ["a.txt", long.as_str()] {
            write_header(&mut buf, &hdr(name)).unwrap();
            buf.extend_from_slice(b"abc");
            write_padding(&mut buf, 3).unwrap();
        }
        write_end(&mut buf).unwrap();
        let mut ar = ::tar::Archive::new(&buf[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.txt".to_string(), long]);
    }

    #[test]
    fn devices_and_xattrs_are_read_back() {
        let xattrs = BTreeMap::from([
            // No `\n`: the tar crate splits records on it (strata's reader
            // and Go's archive/tar go by the length; see normalize's tests).
            ("security.capability".to_string(), b"\x01\0=\xff".to_vec()),
            ("user.a".to_string(), b"1".to_vec()),
        ]);
        let long = "l".repeat(120);
        let mut buf = Vec::new();
        let mut dev = hdr("dev/sda");
        dev.kind = TarKind::BlockDevice;
        dev.size = 0;
        let x = TarExtra {
            devmajor: 8,
            devminor: 1_048_575,
            xattrs: None,
        };
        write_header_with(&mut buf, &dev, &x).unwrap();
        let mut f = hdr(&long);
        f.size = 0;
        let x = TarExtra {
            xattrs: Some(&xattrs),
            ..TarExtra::default()
        };
        write_header_with(&mut buf, &f, &x).unwrap();
        write_end(&mut buf).unwrap();
        // PAX records sorted by key: the xattrs (uppercase) before `path`.
        let (mut pax, mut keys) = (&buf[1024..1536], Vec::new());
        while pax[0] != 0 {
            let sp = pax.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&pax[..sp]).unwrap().parse().unwrap();
            let eq = pax.iter().position(|&b| b == b'=').unwrap();
            keys.push(String::from_utf8(pax[sp + 1..eq].to_vec()).unwrap());
            pax = &pax[len..];
        }
        assert_eq!(
            keys,
            [
                "SCHILY.xattr.security.capability",
                "SCHILY.xattr.user.a",
                "path"
            ]
        );
        let mut ar = ::tar::Archive::new(&buf[..]);
        let mut it = ar.entries().unwrap();
        let e = it.next().unwrap().unwrap();
        assert_eq!(e.header().entry_type(), ::tar::EntryType::Block);
        assert_eq!(e.header().device_major().unwrap(), Some(8));
        assert_eq!(e.header().device_minor().unwrap(), Some(1_048_575));
        let mut e = it.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str().unwrap(), long);
        let got: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap())
            .filter(|r| r.key().unwrap().starts_with("SCHILY"))
            .map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec()))
            .collect();
        assert_eq!(got[0].1, xattrs["security.capability"]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn header_bytes_are_fixed() {
        let b = encode_ustar(&hdr("a"), &TarExtra::default());
        assert_eq!(&b[100..108], b"0000644\0");
        assert_eq!(&b[124..136], b"00000000003\0");
        assert_eq!(&b[257..265], b"ustar\x0000");
        assert_eq!(&b[154..156], b"\0 ");
    }
}
