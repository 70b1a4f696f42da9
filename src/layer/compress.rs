//! PLACEHOLDER — owned by the compression helper; see the brief. API contract:
//!
//! ```ignore
//! pub enum Compression { None, Gzip { level: u32 }, Zstd { level: i32 } }
//! impl Compression {
//!     pub fn gzip() -> Self;          // default gzip level
//!     pub fn zstd() -> Self;          // default zstd level
//!     pub fn media_type(&self) -> &'static str; // application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]
//!     pub fn parse(name: &str, level: Option<i32>) -> Result<Self>; // "gzip"|"zstd"|"none"
//! }
//! pub struct BlobWriter<W> { .. }     // impl Write: uncompressed bytes in
//! impl<W: Write + Send + 'static> BlobWriter<W> {
//!     pub fn new(out: W, compression: Compression, threads: usize) -> Self;
//!     pub fn finish(self) -> io::Result<BlobSummary<W>>;
//! }
//! pub struct BlobSummary<W> { pub out: W, pub digest: Digest, pub size: u64,
//!                             pub diff_id: Digest, pub uncompressed_size: u64 }
//! pub fn detect(prefix: &[u8]) -> Compression;             // by magic bytes
//! pub fn decompressor<'a, R: Read + 'a>(r: R, c: &Compression) -> Box<dyn Read + 'a>;
//! ```
