#!/usr/bin/env python3
"""A minimal Remote Workers API worker for BuildGrid: TEST SCAFFOLDING ONLY.

tests/remote/run.sh starts it next to `bgd server start` so that Bazel's
`--remote_executor` has somewhere to run actions. No registry reachable here
carries a worker for BuildGrid (no BuildGrid release on PyPI has `bgd bot`,
buildbox-worker is in none), so this is the smallest one that does the job; it
is not meant for production (one lease at a time, no cancellation, no
resource limits). An action whose program is an ELF file among its inputs
(every strata action) runs in tests/remote/sandbox.py: a chroot holding only
its inputs and the C runtime `ldd` names; other actions (test scripts, a
genrule's /bin/bash) run on the host. The log says which, per action.

The loop: CreateBotSession (one device with OSFamily=linux), then
UpdateBotSession as a long poll. For each ACTIVE lease: read the Action (the
lease payload is the Action or its Digest), its Command and input root from
the CAS; lay the inputs out in a fresh directory (blobs cached by digest in
--cache-dir); create the parent directories of the outputs (as the REAPI says
the worker does: not the output directories themselves); run the command with
exactly the Command's environment; upload the outputs (files, and a Tree per
output directory), stdout and stderr; complete the lease with the ActionResult.
BuildGrid writes it to its action cache.

Uses only the protos that ship inside buildgrid (`buildgrid._protos`) and grpcio.
"""

import argparse
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
import sandbox
from google.protobuf import any_pb2

from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from buildgrid._protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2
from buildgrid._protos.google.rpc import status_pb2

CHUNK = 1 << 20  # ByteStream chunk size
BATCH = 2 << 20  # most bytes in one BatchReadBlobs/BatchUpdateBlobs


def log(*args):
    print("worker:", *args, file=sys.stderr, flush=True)


def digest_of(data):
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


class Cas:
    """CAS client with a local blob cache (one file per digest)."""

    def __init__(self, channel, instance, cache_dir):
        self.instance = instance
        self.cas = re_grpc.ContentAddressableStorageStub(channel)
        self.bs = bytestream_pb2_grpc.ByteStreamStub(channel)
        self.cache_dir = cache_dir
        os.makedirs(cache_dir, exist_ok=True)

    def _path(self, d):
        return os.path.join(self.cache_dir, d.hash)

    def fetch(self, digests):
        """Brings the blobs into the local cache; returns their paths by hash."""
        missing = {d.hash: d for d in digests if not os.path.exists(self._path(d))}
        small = [d for d in missing.values() if d.size_bytes <= BATCH // 4]
        large = [d for d in missing.values() if d.size_bytes > BATCH // 4]
        while small:
            batch, size = [], 0
            while small and size + small[-1].size_bytes <= BATCH:
                d = small.pop()
                batch.append(d)
                size += d.size_bytes
            if not batch:
                batch.append(small.pop())
            resp = self.cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(instance_name=self.instance, digests=batch))
            for r in resp.responses:
                if r.status.code != 0:
                    raise RuntimeError(f"BatchReadBlobs {r.digest.hash}: {r.status.message}")
                self._store(r.digest, r.data)
        for d in large:
            name = f"{self.instance}/blobs/{d.hash}/{d.size_bytes}"
            data = b"".join(c.data for c in self.bs.Read(bytestream_pb2.ReadRequest(resource_name=name)))
            self._store(d, data)
        return {d.hash: self._path(d) for d in digests}

    def _store(self, d, data):
        if hashlib.sha256(data).hexdigest() != d.hash:
            raise RuntimeError(f"blob {d.hash}: wrong content from the CAS")
        tmp = self._path(d) + f".{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self._path(d))

    def read(self, d):
        with open(self.fetch([d])[d.hash], "rb") as f:
            return f.read()

    def read_message(self, d, cls):
        m = cls()
        m.ParseFromString(self.read(d))
        return m

    def upload(self, blobs):
        """blobs: {hash: (Digest, bytes or path)}; uploads those the CAS lacks."""
        if not blobs:
            return
        resp = self.cas.FindMissingBlobs(
            re_pb2.FindMissingBlobsRequest(instance_name=self.instance, blob_digests=[d for d, _ in blobs.values()])
        )
        batch, size = [], 0
        for d in resp.missing_blob_digests:
            src = blobs[d.hash][1]
            data = src if isinstance(src, bytes) else open(src, "rb").read()
            if d.size_bytes > BATCH // 4:
                self._write(d, data)
                continue
            if size + d.size_bytes > BATCH:
                self._batch_update(batch)
                batch, size = [], 0
            batch.append(re_pb2.BatchUpdateBlobsRequest.Request(digest=d, data=data))
            size += d.size_bytes
        self._batch_update(batch)

    def _batch_update(self, batch):
        if not batch:
            return
        resp = self.cas.BatchUpdateBlobs(re_pb2.BatchUpdateBlobsRequest(instance_name=self.instance, requests=batch))
        for r in resp.responses:
            if r.status.code != 0:
                raise RuntimeError(f"BatchUpdateBlobs {r.digest.hash}: {r.status.message}")

    def _write(self, d, data):
        name = f"{self.instance}/uploads/{uuid.uuid4()}/blobs/{d.hash}/{d.size_bytes}"

        def chunks():
            for off in range(0, max(len(data), 1), CHUNK):
                piece = data[off : off + CHUNK]
                yield bytestream_pb2.WriteRequest(
                    resource_name=name if off == 0 else "",
                    write_offset=off,
                    data=piece,
                    finish_write=off + len(piece) >= len(data),
                )

        resp = self.bs.Write(chunks())
        if resp.committed_size != len(data):
            raise RuntimeError(f"ByteStream.Write {d.hash}: committed {resp.committed_size} of {len(data)}")


def stage(cas, root_digest, dest):
    """Lays out the input root `root_digest` under `dest`."""
    todo = [(root_digest, dest)]
    while todo:
        d, path = todo.pop()
        directory = cas.read_message(d, re_pb2.Directory)
        os.makedirs(path, exist_ok=True)
        paths = cas.fetch([f.digest for f in directory.files])
        for f in directory.files:
            target = os.path.join(path, f.name)
            shutil.copyfile(paths[f.digest.hash], target)
            os.chmod(target, 0o755 if f.is_executable else 0o644)
        for s in directory.symlinks:
            os.symlink(s.target, os.path.join(path, s.name))
        for sub in directory.directories:
            todo.append((sub.digest, os.path.join(path, sub.name)))


def file_digest(path):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return re_pb2.Digest(hash=h.hexdigest(), size_bytes=n)


def is_exec(path):
    return bool(os.stat(path).st_mode & stat.S_IXUSR)


def tree_of(path, blobs):
    """A REAPI Tree of the directory `path` (files read through symlinks); file blobs go to `blobs`."""
    children = []

    def walk(p):
        directory = re_pb2.Directory()
        for name in sorted(os.listdir(p)):
            full = os.path.join(p, name)
            if os.path.isdir(full):
                sub = walk(full)
                children.append(sub)
                directory.directories.add(name=name, digest=digest_of(sub.SerializeToString()))
            else:
                d = file_digest(full)
                blobs[d.hash] = (d, full)
                directory.files.add(name=name, digest=d, is_executable=is_exec(full))
        return directory

    root = walk(path)
    return re_pb2.Tree(root=root, children=children)


def execute(cas, action, workdir, worker_name):
    command = cas.read_message(action.command_digest, re_pb2.Command)
    root = os.path.join(workdir, "root")
    stage(cas, action.input_root_digest, root)
    cwd = os.path.join(root, command.working_directory)
    out_files = list(command.output_files)
    out_dirs = list(command.output_directories)
    if not out_files and not out_dirs and command.output_paths:
        out_files = list(command.output_paths)  # REAPI 2.1: files or directories
    for p in out_files + out_dirs:
        os.makedirs(os.path.dirname(os.path.join(cwd, p)), exist_ok=True)
    env = {v.name: v.value for v in command.environment_variables}
    timeout = action.timeout.seconds or 600
    start = time.time()
    argv = list(command.arguments)
    try:
        if sandbox.is_elf_input(root, cwd, argv[0]):
            exit_code, stdout, stderr, libs = sandbox.run(root, cwd, argv, env, timeout, workdir)
            log(f"ran {argv[0]} in the sandbox: inputs and {' '.join(libs) or 'no library'}")
        else:
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=timeout)
            exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
            log(f"ran {argv[0]} on the host")
    except subprocess.TimeoutExpired as e:
        exit_code, stdout, stderr = 124, e.stdout or b"", (e.stderr or b"") + b"\nworker: timed out\n"
    except OSError as e:
        exit_code, stdout, stderr = 127, b"", f"worker: cannot run {command.arguments[0]}: {e}\n".encode()
    done = time.time()

    result = re_pb2.ActionResult(exit_code=exit_code)
    result.execution_metadata.worker = worker_name
    result.execution_metadata.execution_start_timestamp.FromSeconds(int(start))
    result.execution_metadata.execution_completed_timestamp.FromSeconds(int(done))
    blobs = {}
    for p in out_files:
        full = os.path.join(cwd, p)
        if os.path.isdir(full) and command.output_paths:
            out_dirs.append(p)
        elif os.path.isfile(full):
            d = file_digest(full)
            blobs[d.hash] = (d, full)
            result.output_files.add(path=p, digest=d, is_executable=is_exec(full))
    for p in out_dirs:
        full = os.path.join(cwd, p)
        if os.path.isdir(full):
            data = tree_of(full, blobs).SerializeToString()
            d = digest_of(data)
            blobs[d.hash] = (d, data)
            result.output_directories.add(path=p, tree_digest=d)
    for name, data in (("stdout", stdout), ("stderr", stderr)):
        if data:
            d = digest_of(data)
            blobs[d.hash] = (d, data)
            getattr(result, name + "_digest").CopyFrom(d)
    cas.upload(blobs)
    return result


def run_lease(cas, lease, worker_name, scratch):
    action = re_pb2.Action()
    if lease.payload.Is(re_pb2.Action.DESCRIPTOR):
        lease.payload.Unpack(action)
    else:
        d = re_pb2.Digest()
        lease.payload.Unpack(d)
        action = cas.read_message(d, re_pb2.Action)
    workdir = tempfile.mkdtemp(prefix="lease.", dir=scratch)
    try:
        result = execute(cas, action, workdir, worker_name)
        lease.status.CopyFrom(status_pb2.Status(code=0))
        packed = any_pb2.Any()
        packed.Pack(result)
        lease.result.CopyFrom(packed)
        log(f"lease {lease.id}: exit {result.exit_code}")
    except Exception as e:  # reported to Bazel as the action's failure
        log(f"lease {lease.id}: {e!r}")
        lease.status.CopyFrom(status_pb2.Status(code=13, message=f"worker: {e!r}"))  # INTERNAL
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lease.state = bots_pb2.LeaseState.COMPLETED


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--remote", required=True, help="host:port of the BuildGrid server")
    ap.add_argument("--instance", default="main")
    ap.add_argument("--work-dir", required=True, help="scratch space: blob cache and one directory per lease")
    ap.add_argument("--keepalive", type=float, default=10, help="the server's bot-session-keepalive-timeout")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    channel = grpc.insecure_channel(
        args.remote,
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
    )
    grpc.channel_ready_future(channel).result(timeout=30)
    cas = Cas(channel, args.instance, os.path.join(args.work_dir, "blobs"))
    scratch = os.path.join(args.work_dir, "leases")
    os.makedirs(scratch, exist_ok=True)
    bots = bots_pb2_grpc.BotsStub(channel)
    worker_name = f"strata-test-worker-{os.getpid()}"
    session = bots_pb2.BotSession(
        bot_id=worker_name,
        status=bots_pb2.BotStatus.OK,
        worker=worker_pb2.Worker(
            devices=[worker_pb2.Device(handle=worker_name, properties=[worker_pb2.Device.Property(key="OSFamily", value="linux")])]
        ),
    )
    session = bots.CreateBotSession(bots_pb2.CreateBotSessionRequest(parent=args.instance, bot_session=session), timeout=args.keepalive)
    log(f"bot session {session.name}")
    while True:
        for lease in session.leases:
            if lease.state == bots_pb2.LeaseState.ACTIVE:
                run_lease(cas, lease, worker_name, scratch)
        try:
            session = bots.UpdateBotSession(
                bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=args.keepalive
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            # The long poll ran out; the session (and any completed lease in it) goes again.


if __name__ == "__main__":
    main()
