#!/bin/sh
echo "hello from a Bazel-built layer"
