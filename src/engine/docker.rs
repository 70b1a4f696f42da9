//! The Docker Engine API calls `strata load` makes (API version 1.41, served
//! by Docker 20.10 and later): list the images and their layers, load an
//! archive, inspect the result.
//!
//! Invariants: every answer is parsed with [`crate::json`]'s limits and
//! bounded reads; the load's streamed answer (JSON lines) is read line by
//! line, each at most [`MAX_ANSWER_LINE`] bytes; a load counts as done only
//! when the engine then shows an image whose ID is the config digest and
//! whose layers are the image's diff IDs.

use std::collections::BTreeSet;
use std::io::Write;

use camino::Utf8Path;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::json;

use super::http::Socket;
use super::stream::{write_docker_archive, Counting};
use super::{held_prefix, load_with_retry, LoadImage, LoadReport};

/// The API version strata speaks.
pub const API: &str = "/v1.41";

/// Longest line of the load's answer strata reads.
pub const MAX_ANSWER_LINE: usize = 1 << 20;

/// Most images strata asks about (one request each).
pub const MAX_IMAGES: usize = 100_000;

/// A Docker engine at a unix socket.
pub struct Docker {
    sock: Socket,
}

impl Docker {
    /// The engine at socket `path`.
    pub fn new(path: &Utf8Path) -> Docker {
        Docker {
            sock: Socket::new(path, "docker"),
        }
    }

    /// How errors name this engine.
    pub fn name(&self) -> String {
        self.sock.name()
    }

    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Remote, format!("{}: {what}", self.name()))
    }

    /// GET `path` as JSON; `Ok(None)` for 404.
    fn get_json(&self, path: &str) -> Result<Option<Value>> {
        let (status, body) = self.sock.get(path, json::MAX_JSON_BYTES)?;
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(self.err(format!("GET {path}: {}", api_error(status, &body))));
        }
        json::parse(&body, &format!("{}: answer to GET {path}", self.name())).map(Some)
    }

    /// The chain IDs of every image the engine holds.
    pub fn held_chain_ids(&self) -> Result<BTreeSet<Digest>> {
        let list = self
            .get_json(&format!("{API}/images/json?all=1"))?
            .unwrap_or(Value::Array(Vec::new()));
        let list = list
            .as_array()
            .ok_or_else(|| self.err("GET /images/json: the answer is not a list"))?;
        if list.len() > MAX_IMAGES {
            return Err(self.err(format!("more than {MAX_IMAGES} images")));
        }
        let mut held = BTreeSet::new();
        for item in list {
            let id = item
                .get("Id")
                .and_then(Value::as_str)
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| self.err("GET /images/json: an image without a valid Id"))?;
            // An image removed since the listing is simply not held.
            if let Some(diff_ids) = self.diff_ids(&id)? {
                held.extend(super::chain_ids(&diff_ids));
            }
        }
        Ok(held)
    }

    /// The chain IDs the engine holds that matter for `img`: those of the
    /// images already named by its tags (a reload: the previous build) when
    /// they hold all but the top layer, else those of every image.
    pub fn held_chain_ids_for(&self, img: &LoadImage) -> Result<BTreeSet<Digest>> {
        let mut held = BTreeSet::new();
        for name in &img.tags {
            // Why only well-formed names: they go into the request path.
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
            {
                continue;
            }
            if let Some(diff_ids) = self.diff_ids(name)? {
                held.extend(super::chain_ids(&diff_ids));
            }
        }
        if held_prefix(&img.layers, &held) + 1 >= img.layers.len() {
            return Ok(held);
        }
        self.held_chain_ids()
    }

    /// The diff IDs (`RootFS.Layers`) of image `id` (an ID or a name), or
    /// `None` if the engine has no such image.
    pub fn diff_ids(&self, id: &(impl std::fmt::Display + ?Sized)) -> Result<Option<Vec<Digest>>> {
        let path = format!("{API}/images/{id}/json");
        let Some(v) = self.get_json(&path)? else {
            return Ok(None);
        };
        let layers = match v.pointer("/RootFS/Layers") {
            None | Some(Value::Null) => return Ok(Some(Vec::new())),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(self.err(format!("GET {path}: RootFS.Layers is not a list"))),
        };
        layers
            .iter()
            .map(|l| {
                l.as_str()
                    .and_then(|s| Digest::parse(s).ok())
                    .ok_or_else(|| self.err(format!("GET {path}: a layer that is not a digest")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Load `img`, sending only the layers the engine lacks; once more with
    /// every layer if the engine turns out to have lost one it held.
    /// `prepare(img, skip)` runs before each attempt (e.g. to fetch the
    /// layers from `skip` up that are only in a registry).
    pub fn load(
        &self,
        img: &mut LoadImage,
        held: &BTreeSet<Digest>,
        prepare: &mut dyn FnMut(&mut LoadImage, usize) -> Result<()>,
    ) -> Result<LoadReport> {
        load_with_retry(img, held, prepare, &|img, skip| self.load_once(img, skip))
    }

    /// One `POST /images/load` of the archive without the `skip` bottom blobs.
    pub fn load_once(&self, img: &LoadImage, skip: usize) -> Result<LoadReport> {
        let mut sent = 0u64;
        let mut body = |w: &mut dyn Write| -> Result<()> {
            let mut c = Counting { inner: w, count: 0 };
            let r = write_docker_archive(&mut c, img, skip);
            sent = c.count;
            r
        };
        let path = format!("{API}/images/load?quiet=1");
        let mut resp = self
            .sock
            .request("POST", &path, Some("application/x-tar"), Some(&mut body))
            .map_err(|e| {
                if e.kind() == ErrorKind::Remote {
                    e
                } else {
                    e.context(format!("loading into {}", self.name()))
                }
            })?;
        if resp.status != 200 {
            let body = resp.read_body(1 << 20)?;
            return Err(self.err(format!("load refused: {}", api_error(resp.status, &body))));
        }
        let mut streamed = Vec::new();
        let mut lines = 0usize;
        while let Some(line) = resp.read_line(MAX_ANSWER_LINE)? {
            lines += 1;
            if lines > 100_000 {
                return Err(self.err("load: answer of more than 100000 lines"));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v: Value = json::parse(&line, &format!("{}: load answer", self.name()))?;
            if let Some(m) = v
                .pointer("/errorDetail/message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
            {
                return Err(self.err(format!("load failed: {}", one_line(m))));
            }
            if let Some(s) = v.get("stream").and_then(Value::as_str) {
                streamed.push(s.trim().to_string());
            }
        }
        // The engine's own word, then its view of the image: the image ID is
        // the config digest and the layers are the config's.
        let id = img.config_digest;
        let said = streamed
            .iter()
            .any(|s| s.starts_with("Loaded image ID: ") || s.starts_with("Loaded image: "));
        if !said {
            return Err(self.err(format!(
                "load answered without naming the image it loaded ({:?})",
                one_line(&streamed.join(" "))
                    .chars()
                    .take(200)
                    .collect::<String>()
            )));
        }
        let want: Vec<Digest> = img.layers.iter().map(|l| l.diff_id).collect();
        match self.diff_ids(&id)? {
            Some(have) if have == want => {}
            Some(_) => {
                return Err(self.err(format!(
                    "after the load, image {id} has other layers than the image's config lists"
                )))
            }
            None => return Err(self.err(format!("after the load, no image {id}"))),
        }
        Ok(img.report(id, skip, sent))
    }
}

/// An error answer: Docker's `{"message": …}`, else the status.
fn api_error(status: u16, body: &[u8]) -> String {
    let msg = json::parse::<Value>(body, "answer")
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(one_line));
    match msg {
        Some(m) => format!("{m} (HTTP {status})"),
        None => format!("HTTP {status}"),
    }
}

/// An engine's message as one line of printable text, at most 1000 characters.
fn one_line(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1000)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::http::tests::fake_engine;
    use super::super::LoadLayer;
    use super::*;
    use crate::descriptor::Descriptor;
    use crate::layout::BlobSource;
    use camino::Utf8PathBuf;
    use std::sync::Arc;

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
        (t, p)
    }

    fn image() -> LoadImage {
        let blobs: Vec<Vec<u8>> = vec![b"base".to_vec(), b"app".to_vec()];
        let diff_ids: Vec<Digest> = blobs.iter().map(|b| Digest::of(b)).collect();
        let chain = super::super::chain_ids(&diff_ids);
        let layers = blobs
            .iter()
            .zip(diff_ids.iter().zip(chain))
            .map(|(b, (d, c))| LoadLayer {
                desc: Descriptor::new(crate::media_type::OCI_LAYER, Digest::of(b), b.len() as u64),
                diff_id: *d,
                chain_id: c,
                source: BlobSource::Bytes(Arc::new(b.clone())),
            })
            .collect();
        LoadImage {
            manifest_desc: Descriptor::new("m", Digest::of(b"m"), 1),
            manifest_bytes: b"m".to_vec(),
            config_digest: Digest::of(b"{}"),
            config_bytes: b"{}".to_vec(),
            layers,
            tags: vec!["x:1".into()],
        }
    }

    fn ok(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn inspect(img: &LoadImage) -> Vec<u8> {
        let ls: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
        ok(
            &serde_json::json!({"Id": img.config_digest.to_string(), "RootFS": {"Layers": ls}})
                .to_string(),
        )
    }

    #[test]
    fn a_lost_layer_is_sent_on_retry() {
        let (_t, d) = tmp();
        let mut img = image();
        let base = img.layers[0].desc.digest.hex();
        let answers = vec![
            ok(&format!(
                "{{\"errorDetail\":{{\"message\":\"open /x/docker-import-1/blobs/sha256/{base}: no such file or directory\"}}}}\n"
            )),
            ok("{\"stream\":\"Loaded image: x:1\\n\"}\n"),
            inspect(&img),
        ];
        let (p, h) = fake_engine(&d, answers);
        let held: BTreeSet<Digest> = [img.layers[0].chain_id].into();
        let r = Docker::new(&p)
            .load(&mut img, &held, &mut |_, _| Ok(()))
            .unwrap();
        assert!(r.retried);
        assert_eq!((r.sent_layers, r.skipped_layers), (2, 0));
        let seen = h.join().unwrap();
        // The first archive left out the base, the second held it.
        let has = |body: &[u8]| {
            let s = String::from_utf8_lossy(body).to_string();
            s.contains(&format!("blobs/sha256/{base}\0"))
        };
        assert!(!has(&seen[0].1) && has(&seen[1].1));
    }

    #[test]
    fn hostile_and_error_answers() {
        let (_t, d) = tmp();
        let mut img = image();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 27\r\n\r\n{\"message\":\"disk is full\"}\n".to_vec(),
                "load refused: disk is full (HTTP 500)",
            ),
            (ok("{\"error\":\"bad\\narchive\"}\n"), "load failed: bad archive"),
            (ok("not json\n"), "malformed JSON"),
            (ok(&"[".repeat(100)), "nested deeper"),
            (ok("{\"stream\":\"hello\"}\n"), "without naming the image"),
            (
                format!(
                    "HTTP/1.1 200 OK\r\n\r\n{}",
                    "a".repeat(MAX_ANSWER_LINE + 1)
                )
                .into_bytes(),
                "answer line longer than",
            ),
        ];
        let n = cases.len();
        let (p, h) = fake_engine(&d, cases.iter().map(|c| c.0.clone()).collect());
        let dk = Docker::new(&p);
        for (i, (_, want)) in cases.iter().enumerate() {
            let e = dk
                .load(&mut img, &BTreeSet::new(), &mut |_, _| Ok(()))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("docker at unix://"), "{e}");
            assert!(e.contains(want), "case {i}: {e}");
        }
        assert_eq!(h.join().unwrap().len(), n);
    }

    #[test]
    fn a_reload_asks_about_its_tag_only() {
        let (_t, d) = tmp();
        let img = image();
        // The tag names the previous build: the same base, another top layer.
        let mut prev = img.clone();
        prev.layers[1].diff_id = Digest::of(b"old app");
        let (p, h) = fake_engine(&d, vec![inspect(&prev)]);
        let held = Docker::new(&p).held_chain_ids_for(&img).unwrap();
        assert_eq!(held_prefix(&img.layers, &held), 1);
        let seen = h.join().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].0.starts_with("GET /v1.41/images/x:1/json "),
            "{}",
            seen[0].0
        );
    }

    #[test]
    fn held_layers_from_the_image_list() {
        let (_t, d) = tmp();
        let img = image();
        let id = img.config_digest;
        let answers = vec![
            ok(&format!("[{{\"Id\":\"{id}\"}}]")),
            inspect(&img),
            ok("{\"Id\":1}"),
            ok("[{\"Id\":\"nope\"}]"),
        ];
        let (p, _h) = fake_engine(&d, answers);
        let dk = Docker::new(&p);
        let held = dk.held_chain_ids().unwrap();
        assert_eq!(held_prefix(&img.layers, &held), 2);
        let e = dk.held_chain_ids().unwrap_err().to_string();
        assert!(e.contains("not a list"), "{e}");
        let e = dk.held_chain_ids().unwrap_err().to_string();
        assert!(e.contains("without a valid Id"), "{e}");
    }
}
