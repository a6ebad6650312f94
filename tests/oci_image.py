"""A busybox image as an OCI image layout tarball, built here: `ctr images import` takes it, no registry.

One layer (static busybox and its applets as symlinks), made reproducible (sorted
names, owner 0, mtime 0, gzip without a name or time), so that the same busybox
gives the same digests. The facts containerd checks: the config's `diff_ids`
hold the digest of the *uncompressed* layer; the manifest's layer `digest` and
`size` are the gzipped blob's; every `size` is an exact byte count; the index's
`io.containerd.image.name` annotation names the imported image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.rootfs import BUSYBOX

IMAGE_NAME = "localhost/corral-busybox:latest"

#: Go's names for the machine, as image platforms spell them.
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}

_DIRS = ("bin", "dev", "etc", "proc", "root", "sys", "tmp")


def _entry(name: str, kind: bytes, mode: int, *, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def busybox_layer(busybox: str = BUSYBOX) -> bytes:
    """The uncompressed layer tar: /bin/busybox, every applet linked to it, the usual directories."""
    binary = Path(busybox).read_bytes()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for d in _DIRS:
        members.append((_entry(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755), None))
    members.append((_entry("bin/busybox", tarfile.REGTYPE, 0o755, size=len(binary)), binary))
    for applet in applets:
        if applet != "busybox":
            members.append((_entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox"), None))
    passwd = b"root:x:0:0:root:/root:/bin/sh\n"
    members.append((_entry("etc/passwd", tarfile.REGTYPE, 0o644, size=len(passwd)), passwd))
    members.sort(key=lambda m: m[0].name)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def busybox_image_layout(name: str = IMAGE_NAME, busybox: str = BUSYBOX) -> bytes:
    """The whole OCI image layout, as the bytes of a tar that `ctr images import` reads."""
    arch = _ARCH.get(platform.machine(), platform.machine())
    layer = busybox_layer(busybox)
    gzipped = gzip.compress(layer, mtime=0)
    blobs: dict[str, bytes] = {}
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    config_desc = _blob(blobs, json.dumps(config, sort_keys=True).encode())
    layer_desc = _blob(blobs, gzipped)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_desc}],
    }
    manifest_desc = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest_desc,
                "annotations": {"io.containerd.image.name": name},
                "platform": {"architecture": arch, "os": "linux"},
            }
        ],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
    }
    for digest, data in blobs.items():
        files[f"blobs/sha256/{digest.split(':', 1)[1]}"] = data
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(_entry(d, tarfile.DIRTYPE, 0o755))
        for path in sorted(files):
            data = files[path]
            tar.addfile(_entry(path, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
    return out.getvalue()
