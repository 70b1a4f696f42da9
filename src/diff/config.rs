//! Comparing JSON documents field by field (index, manifests, configs): one
//! finding per differing leaf, each classed by where it is (a timestamp,
//! history, a name annotation, a zero value, builder metadata, or
//! meaningful).
//!
//! Invariants: objects are walked in key order (`serde_json` maps are
//! sorted here), so findings come out in the same order for the same
//! documents; arrays of objects recurse by index, other arrays compare whole.

use std::collections::BTreeSet;

use serde_json::Value;

use super::report::{Class, Sink};
use crate::descriptor::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};

/// JSON path segment for an object key.
fn key_seg(prefix: &str, k: &str) -> String {
    let plain = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (prefix.is_empty(), plain) {
        (true, true) => k.to_string(),
        (false, true) => format!("{prefix}.{k}"),
        (_, false) => format!("{prefix}[{}]", Value::String(k.to_string())),
    }
}

/// Walk two JSON documents; one finding per differing leaf. Objects recurse
/// by key; arrays of objects by index; other arrays compare whole (`Env`,
/// `Cmd`: one finding says more than one per element).
pub(super) fn compare_json(
    place: &str,
    prefix: &str,
    a: Option<&Value>,
    b: Option<&Value>,
    classify: &dyn Fn(&str) -> Class,
    sink: &mut Sink,
) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                compare_json(
                    place,
                    &key_seg(prefix, k),
                    x.get(k),
                    y.get(k),
                    classify,
                    sink,
                );
            }
        }
        // Why: an object on one side only (`annotations`) is compared key by
        // key, so each key is classified (an image-name annotation is a name).
        (Some(Value::Object(x)), None | Some(Value::Null)) if !x.is_empty() => {
            for (k, v) in x {
                compare_json(place, &key_seg(prefix, k), Some(v), None, classify, sink);
            }
        }
        (None | Some(Value::Null), Some(Value::Object(y))) if !y.is_empty() => {
            for (k, v) in y {
                compare_json(place, &key_seg(prefix, k), None, Some(v), classify, sink);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y)))
            if x.iter().chain(y.iter()).all(Value::is_object) =>
        {
            for i in 0..x.len().max(y.len()) {
                compare_json(
                    place,
                    &format!("{prefix}[{i}]"),
                    x.get(i),
                    y.get(i),
                    classify,
                    sink,
                );
            }
        }
        (x, y) if x == y => {}
        (x, y) => {
            let class = match classify(prefix) {
                Class::Meaningful if is_empty(x) && is_empty(y) => Class::Empty,
                c => c,
            };
            sink.add(
                place,
                None,
                prefix,
                x.cloned().unwrap_or(Value::Null),
                y.cloned().unwrap_or(Value::Null),
                class,
            )
        }
    }
}

/// Absent, or a zero value a Go encoder writes where others write nothing.
fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Number(_)) | Some(Value::Bool(true)) => false,
    }
}

fn is_name_annotation(path: &str) -> bool {
    path.contains(ANNOTATION_REF_NAME) || path.contains(ANNOTATION_CONTAINERD_NAME)
}

pub(super) fn classify_descriptor_list(path: &str) -> Class {
    if path.ends_with(".digest") || path.ends_with(".size") {
        Class::Digest
    } else if is_name_annotation(path) {
        Class::Name
    } else if path.contains("org.opencontainers.image.created") {
        Class::Timestamp
    } else {
        Class::Meaningful
    }
}

pub(super) fn classify_manifest(path: &str) -> Class {
    if path.starts_with("layers[") && path.ends_with(".mediaType") {
        Class::Compression
    } else {
        classify_descriptor_list(path)
    }
}

pub(super) fn classify_config(path: &str) -> Class {
    if path == "created" {
        Class::Timestamp
    } else if path.starts_with("history") {
        Class::History
    } else if path.starts_with("rootfs.diff_ids") {
        Class::Digest
    } else if path == "container"
        || path == "docker_version"
        || path == "container_config"
        || path.starts_with("container_config.")
    {
        Class::Builder
    } else if path.contains("org.opencontainers.image.created") {
        Class::Timestamp
    } else {
        Class::Meaningful
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_and_builder_metadata_are_not_semantic() {
        let a = serde_json::json!({"config": {"Env": ["A=1"]}});
        let b = serde_json::json!({
            "config": {"Env": ["A=1"], "Cmd": null, "Tty": false, "Hostname": "",
                       "Volumes": {}, "OnBuild": [], "User": "nobody"},
            "container_config": {"Cmd": ["/bin/sh"]},
            "docker_version": "20.10.24"
        });
        let mut sink = Sink::new(true, Vec::new());
        compare_json(
            "config",
            "",
            Some(&a),
            Some(&b),
            &classify_config,
            &mut sink,
        );
        let fields: Vec<&str> = sink
            .report
            .findings
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["config.User"]);
        assert_eq!(sink.report.ignored["empty vs absent values"], 5);
        assert_eq!(sink.report.ignored["builder metadata"], 2);
    }

    #[test]
    fn json_paths() {
        assert_eq!(key_seg("", "config"), "config");
        assert_eq!(key_seg("config", "Env"), "config.Env");
        assert_eq!(
            key_seg("config.Labels", "org.x"),
            "config.Labels[\"org.x\"]"
        );
    }
}
