//! `strata index`: flags to [`IndexOptions`]; the work is [`compose_index`]
//! and [`ComposedIndex::write`].

use camino::Utf8PathBuf;
use clap::Args;

use super::common::{epoch, finish_side_output, side_output, CacheDirArg, FormatArg, OutputArgs};
use super::registry::fetch_remote_blobs;
use super::{usage, CliResult, Failure};
use strata::archive::Format;
use strata::error::{Error, Result};
use strata::index::{compose_index, ComposedIndex, IndexOptions};
use strata::layout::Layout;

#[derive(Args)]
pub(super) struct IndexArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// The output's format (a docker-archive holds one image, not an index).
    #[arg(long, value_enum, default_value = "oci")]
    format: FormatArg,
    /// NAME:TAG recorded in the layout.
    #[arg(long)]
    tag: Option<String>,
    #[command(flatten)]
    cache: CacheDirArg,
    /// Single-platform images (OCI layouts or archives).
    #[arg(required = true)]
    images: Vec<Utf8PathBuf>,
}

pub(super) fn index(a: IndexArgs) -> CliResult {
    let format = Format::from(a.format);
    if !ComposedIndex::can_write(format) {
        return Err(Failure::Usage(Error::invalid(
            "--format docker-archive: a docker-archive holds one image, not an index; use oci or oci-archive",
        )));
    }
    let mtime = usage(epoch(None, "mtime"))?;
    if let Some(t) = &a.tag {
        usage(strata::descriptor::split_tag(t))?;
    }
    let out = &a.output;
    let images = a
        .images
        .iter()
        .map(|p| Layout::open(p))
        .collect::<Result<Vec<_>>>()?;
    let mut composed = compose_index(&images, &IndexOptions { tag: a.tag.clone() })?;
    // Kept until the output is written: a temporary fetch directory, if one was needed.
    let _fetched = if format != Format::Oci {
        fetch_remote_blobs(
            &mut composed.plan,
            a.cache.cache_dir.as_deref(),
            &out.out,
            out.quiet,
        )?
    } else {
        None
    };
    let digest_out = side_output(out.digest_file.digest_file.as_deref())?;
    composed.write(format, &out.out, mtime)?;
    finish_side_output(digest_out, composed.digest.to_string().as_bytes())?;
    if !out.quiet {
        outln!("{}", composed.digest);
    }
    Ok(0)
}
