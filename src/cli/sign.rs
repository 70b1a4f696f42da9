//! `strata sign`, `strata attest` and the key checks of `strata verify
//! --key`: flags, key files, the external signer program, printing. The
//! work is in `strata::signature`, `strata::envelope` and
//! `strata::signing_key`. Keys are never printed: errors name the key file
//! and the problem only.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use camino::{Utf8Path, Utf8PathBuf};
use clap::Args;

use super::{usage, CliResult, Failure};
use strata::descriptor::{split_tag, ANNOTATION_CONTAINERD_NAME};
use strata::error::{Error, Result};
use strata::layer::read_small_file;
use strata::layout::Layout;
use strata::signing_key::{check_der_signature, Signer, SigningKey, VerifyingKey, MAX_KEY_BYTES};

/// Largest statement `strata attest` signs.
const MAX_STATEMENT_BYTES: usize = 64 << 20;
/// Largest answer read from an external signer.
const MAX_SIGNER_OUTPUT: u64 = 64 << 10;

/// Who signs: a key file or an external program.
#[derive(Args)]
pub(super) struct SignerArgs {
    /// ECDSA P-256 private key, PEM (PKCS#8 or SEC1, unencrypted).
    #[arg(long, required_unless_present = "signer", conflicts_with = "signer")]
    key: Option<Utf8PathBuf>,
    /// External signer instead of --key: a program and its arguments, as a
    /// JSON array (["kms-sign","--key","k1"]) or words split on spaces (no
    /// shell). It gets the bytes to sign on stdin and must print their
    /// ECDSA P-256 signature on stdout, base64 of DER (cosign sign-blob's
    /// output) or raw DER, and exit 0.
    #[arg(long)]
    signer: Option<String>,
}

#[derive(Args)]
pub(super) struct SignArgs {
    /// The image: an OCI layout directory (the signature is added in place).
    image: Utf8PathBuf,
    #[command(flatten)]
    signer: SignerArgs,
    /// The repository the signature names (docker-reference), e.g.
    /// registry.example/app (default: the image's recorded name, else empty).
    #[arg(long)]
    identity: Option<String>,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    reference: Option<String>,
}

#[derive(Args)]
pub(super) struct AttestArgs {
    /// The image: an OCI layout directory (the attestation is added in place).
    image: Utf8PathBuf,
    /// An in-toto Statement (JSON) whose subject names the image's manifest digest.
    #[arg(long)]
    statement: Utf8PathBuf,
    #[command(flatten)]
    signer: SignerArgs,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    reference: Option<String>,
}

/// A signer program run once per signature.
struct ExternalSigner {
    argv: Vec<String>,
}

impl Signer for ExternalSigner {
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let what = format!("signer {}", self.argv[0]);
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io(format!("running {what}"), &e))?;
        let mut stdin = child.stdin.take().expect("piped");
        let data = data.to_vec();
        // Why a thread: a signer that answers before reading all input must
        // not deadlock against a full pipe.
        let feeder = std::thread::spawn(move || stdin.write_all(&data));
        let mut out = Vec::new();
        let read = child
            .stdout
            .take()
            .expect("piped")
            .take(MAX_SIGNER_OUTPUT + 1)
            .read_to_end(&mut out);
        let status = child
            .wait()
            .map_err(|e| Error::io(format!("running {what}"), &e))?;
        let _ = feeder.join();
        if !status.success() {
            return Err(Error::invalid(format!("{what}: failed ({status})")));
        }
        read.map_err(|e| Error::io(format!("reading the answer of {what}"), &e))?;
        if out.len() as u64 > MAX_SIGNER_OUTPUT {
            return Err(Error::invalid(format!(
                "{what}: answered more than {MAX_SIGNER_OUTPUT} bytes; expected a signature"
            )));
        }
        let text = String::from_utf8_lossy(&out);
        let der = match BASE64.decode(text.trim()) {
            Ok(d) => d,
            Err(_) => out,
        };
        check_der_signature(&der).map_err(|e| e.context(&what))
    }
}

fn signer(a: &SignerArgs) -> std::result::Result<Box<dyn Signer>, Failure> {
    if let Some(cmd) = &a.signer {
        let argv: Vec<String> = if cmd.trim_start().starts_with('[') {
            usage(serde_json::from_str(cmd).map_err(|e| {
                Error::invalid(format!(
                    "--signer {cmd:?}: not a JSON array of strings: {e}"
                ))
            }))?
        } else {
            cmd.split_whitespace().map(str::to_string).collect()
        };
        if argv.is_empty() || argv[0].is_empty() {
            return Err(Failure::Usage(Error::invalid("--signer: no program given")));
        }
        return Ok(Box::new(ExternalSigner { argv }));
    }
    let path = a.key.as_ref().expect("clap requires --key or --signer");
    let pem = read_small_file(path, MAX_KEY_BYTES)?;
    Ok(Box::new(SigningKey::from_pem(&pem, path.as_str())?))
}

/// The repository the image records (`io.containerd.image.name` without its tag).
fn recorded_identity(desc: &strata::descriptor::Descriptor) -> String {
    desc.annotations
        .get(ANNOTATION_CONTAINERD_NAME)
        .and_then(|n| split_tag(n).ok())
        .map(|(name, _)| name)
        .unwrap_or_default()
}

pub(super) fn sign(a: SignArgs) -> CliResult {
    let signer = signer(&a.signer)?;
    let layout = Layout::open(&a.image)?;
    let image = layout.top(a.reference.as_deref())?;
    let identity = a
        .identity
        .clone()
        .unwrap_or_else(|| recorded_identity(&image));
    let arts = strata::signature::sign(&image, &identity, signer.as_ref())?;
    strata::referrer::add_to_layout(&a.image, &arts)?;
    for art in &arts {
        outln!("{}", art.descriptor.digest);
    }
    Ok(0)
}

pub(super) fn attest(a: AttestArgs) -> CliResult {
    let signer = signer(&a.signer)?;
    let layout = Layout::open(&a.image)?;
    let image = layout.top(a.reference.as_deref())?;
    let statement = read_small_file(&a.statement, MAX_STATEMENT_BYTES)?;
    let art = strata::envelope::attest(&image, &statement, a.statement.as_str(), signer.as_ref())?;
    strata::referrer::add_to_layout(&a.image, std::slice::from_ref(&art))?;
    outln!("{}", art.descriptor.digest);
    Ok(0)
}

/// `strata verify --key`: every signature and envelope attached to the
/// image verifies with the key, and there is at least one signature.
pub(super) fn verify_signatures(
    layout: &Layout,
    reference: Option<&str>,
    key: &Utf8Path,
) -> Result<String> {
    let pem = read_small_file(key, MAX_KEY_BYTES)?;
    let key_pub = VerifyingKey::from_pem(&pem, key.as_str())?;
    let image = layout.top(reference)?;
    let c = strata::signature::verify_attached(layout, &image, &key_pub)?;
    Ok(format!(
        "signed: {} signature(s), {} attestation(s) verified with {key}",
        c.signatures, c.envelopes
    ))
}
