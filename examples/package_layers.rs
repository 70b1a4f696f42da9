//! strata as a library: an image of "packages", one layer each, built in
//! parallel in memory — the job of a program that turns, say, a Conda
//! environment into an image without a Dockerfile or a container runtime.
//!
//! ```text
//! cargo run --example package_layers -- OUT_DIR [--base IMAGE]
//! ```
//!
//! - each package becomes a layer built on its own thread from bytes in
//!   memory (no file on disk), its files under `/opt/env`;
//! - one more layer comes from a directory (`examples/hello/www`, at
//!   `/srv/www`);
//! - they are composed, on top of `--base IMAGE` if given (an OCI layout or
//!   archive whose image has `/bin/sh`), into an image whose command prints
//!   every package's README and the web page;
//! - the image is written twice: `OUT_DIR/image.oci` (an OCI layout) and
//!   `OUT_DIR/image.tar` (a docker-archive, `docker load -i` it and
//!   `docker run strata-packages:1`).
//!
//! Prints the image's manifest digest: the same on every run and machine
//! (times come from `SOURCE_DATE_EPOCH`, else 0; thread scheduling does not
//! matter).

use std::process::ExitCode;

use camino::{Utf8Path, Utf8PathBuf};
use strata::{
    compose, write_image, Compression, DirOptions, Format, ImageOptions, LayerBuilder,
    LayerDescriptor, LayerOptions, Layout, NewLayer,
};

/// The tag the docker-archive records.
const TAG: &str = "strata-packages:1";

/// A package: a name, a version and files generated from them.
struct Package {
    name: &'static str,
    version: &'static str,
}

const PACKAGES: &[Package] = &[
    Package {
        name: "python",
        version: "3.12.7",
    },
    Package {
        name: "numpy",
        version: "2.1.2",
    },
    Package {
        name: "pandas",
        version: "2.2.3",
    },
    Package {
        name: "openssl",
        version: "3.3.2",
    },
];

impl Package {
    fn readme(&self) -> String {
        format!("/opt/env/share/{}/README", self.name)
    }

    /// The package's layer, built in memory: a README, a library of some
    /// size, a launcher script and its conda-meta record.
    fn layer(&self, opts: &LayerOptions) -> strata::Result<(Vec<u8>, LayerDescriptor)> {
        let (name, version) = (self.name, self.version);
        // Bytes that compress like a real library, from the name alone.
        let lib: Vec<u8> = (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ name.as_bytes()[0])
            .collect();
        let meta = format!("{{\"name\":\"{name}\",\"version\":\"{version}\"}}\n");
        let mut b = LayerBuilder::new();
        b.file(
            &format!("opt/env/share/{name}/README"),
            format!("{name} {version}\n"),
            0o644,
        )?
        .file(&format!("opt/env/lib/lib{name}.so.{version}"), lib, 0o755)?
        .symlink(
            &format!("opt/env/lib/lib{name}.so"),
            &format!("lib{name}.so.{version}"),
        )?
        .file(
            &format!("opt/env/bin/{name}"),
            format!("#!/bin/sh\necho {name} {version}\n"),
            0o755,
        )?
        .file(
            &format!("opt/env/conda-meta/{name}-{version}.json"),
            meta,
            0o644,
        )?;
        b.write(Vec::new(), opts)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(digest) => {
            println!("{digest}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("package_layers: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> strata::Error {
    strata::Error::invalid("usage: package_layers OUT_DIR [--base IMAGE]")
}

fn run() -> strata::Result<strata::Digest> {
    let mut args = std::env::args().skip(1);
    let (mut out, mut base) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--base" => base = Some(Utf8PathBuf::from(args.next().ok_or_else(usage)?)),
            _ if out.is_none() && !a.starts_with('-') => out = Some(Utf8PathBuf::from(a)),
            _ => return Err(usage()),
        }
    }
    let out = out.ok_or_else(usage)?;
    // The one time in the image: SOURCE_DATE_EPOCH, else the epoch.
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .parse::<u64>()
            .map_err(|_| strata::Error::invalid(format!("SOURCE_DATE_EPOCH {s:?}: not seconds")))?,
        Err(_) => 0,
    };
    let opts = LayerOptions {
        compression: Compression::gzip(),
        mtime: epoch,
        threads: 1,
    };

    // One thread per package; results joined in package order, so the layer
    // order (and the digest) never depends on which thread finishes first.
    let mut layers = std::thread::scope(|s| {
        let handles: Vec<_> = PACKAGES
            .iter()
            .map(|p| s.spawn(|| p.layer(&opts)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (blob, desc) = h.join().expect("a layer thread panicked")?;
                Ok(NewLayer::from_blob(desc, blob))
            })
            .collect::<strata::Result<Vec<_>>>()
    })?;

    // One layer from a directory on disk.
    let www = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/www");
    let mut site = LayerBuilder::new();
    site.tree(&www, Some("srv/www"), &DirOptions::default())?;
    let (blob, desc) = site.write(Vec::new(), &opts)?;
    layers.push(NewLayer::from_blob(desc, blob));

    // The command prints every README, then the page.
    let mut files: Vec<String> = PACKAGES.iter().map(Package::readme).collect();
    files.push("/srv/www/index.html".into());
    let mut image_opts = ImageOptions::created_at(epoch);
    image_opts.changes.entrypoint = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("cat {}", files.join(" ")),
    ]);
    image_opts.changes.env = vec![("PATH".into(), "/opt/env/bin:/usr/bin:/bin".into())];
    image_opts.changes.workdir = Some("/opt/env".into());
    image_opts.tag = Some(TAG.into());

    let base_layout = base.as_deref().map(Layout::open).transpose()?;
    let base_image = match &base_layout {
        Some(l) => Some(l.image(None, None)?),
        None => None,
    };
    let image = compose(
        base_layout.as_ref().zip(base_image.as_ref()),
        layers,
        &image_opts,
    )?;
    std::fs::create_dir_all(&out).map_err(|e| strata::Error::io(format!("creating {out}"), &e))?;
    write_image(&image, Format::Oci, &out.join("image.oci"), epoch)?;
    write_image(&image, Format::DockerArchive, &out.join("image.tar"), epoch)?;
    Ok(image.manifest.digest)
}
