"""A small fake Hugging Face Hub for tests: the part of the Hub API huggingface_hub 2.4 uses to
create a repo, read its info and commit files, with plain LFS (batch API + PUT) for big files.

Why hand-written: the Hub cannot be reached here, and no library ships a Hub test server. It
speaks only what ``HfApi.create_repo``, ``repo_info``/``model_info``/``dataset_info``,
``create_commit``/``upload_folder`` (``/api/validate-yaml``, ``preupload``, the LFS batch
endpoint, the PUT of each LFS object and its verify, the NDJSON ``commit``) send, read from the
client's source (``hf_api.py``, ``_commit_api.py``, ``lfs.py``). It never offers Xet: the
``xet-write-token`` endpoint answers 404, and :func:`serve` turns off huggingface_hub's Xet path
(which 2.4 picks whenever ``hf_xet`` is installed, whatever the server says) so uploads go
through plain LFS.

It records what arrived (repos with their private flag, files with their bytes, commits, the
request lines) for tests to assert on, and can fail chosen requests (:meth:`FakeHub.fail`: an
HTTP status, or the connection dropped without a reply) as a real server does mid-upload. It binds 127.0.0.1 only, on a free port, and shuts
itself down after ``lifetime_s`` even if a test forgets to stop it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml

MAX_BODY_BYTES = 256 * 1024 * 1024    # refuse bigger requests: tests push tiny folders
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".wav", ".mp3", ".npz")
LFS_MIN_BYTES = 10 * 1024 * 1024      # the Hub stores files above 10 MB in LFS
REQUEST_TIMEOUT_S = 30.0              # a stalled client cannot hold a handler thread forever
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}


@dataclass
class Commit:
    repo_id: str
    summary: str
    description: str
    paths: list[str]
    lfs_paths: list[str]
    oid: str


@dataclass
class Failure:
    """Requests that fail on purpose: ``method`` and a regex searched in the path; ``status``
    None drops the connection without a reply. ``times`` is how many more requests it hits."""

    method: str
    path: str
    status: int | None
    times: int
    payload: dict = field(default_factory=lambda: {"error": "fake Hub failure (on purpose)"})


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)   # paths committed as LFS pointers

    @property
    def sha(self) -> str:
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + self.files[path])
        return digest.hexdigest()

    @property
    def card(self) -> str | None:
        data = self.files.get("README.md")
        return data.decode("utf-8") if data is not None else None


class FakeHub:
    """State of the fake Hub plus the running server. Tests read ``repos``, ``commits``,
    ``lfs_objects`` and ``requests``; ``add_repo`` seeds a repo that already exists."""

    def __init__(self, token: str = "hf_fake_token_0123456789", lifetime_s: float = 300.0) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.commits: list[Commit] = []
        self.lfs_objects: dict[str, bytes] = {}     # sha256 hex -> bytes PUT by the client
        self.requests: list[tuple[str, str]] = []   # (method, path): never headers or bodies
        self.failures: list[Failure] = []
        self.owners: set[str] | None = None          # namespaces the token may create and write in; None: any
        self.writable: set[str] = set()              # repos it may write to outside them (an org's)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="fake-hub")
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True

    def start(self) -> "FakeHub":
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def add_repo(self, repo_id: str, repo_type: str = "model", private: bool = False,
                 files: dict[str, bytes] | None = None) -> Repo:
        repo = Repo(repo_id, repo_type, private, dict(files or {}))
        self.repos[repo_id] = repo
        return repo

    def fail(self, method: str, path: str, status: int | None = 500, times: int = 1000,
             payload: dict | None = None) -> Failure:
        """Make the next ``times`` ``method`` requests whose path matches ``path`` fail with
        ``status`` (None: drop the connection); by default until the test ends."""
        failure = Failure(method, path, status, times, payload or {"error": f"fake Hub failure {status}"})
        self.failures.append(failure)
        return failure

    def _failure_for(self, method: str, path: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if failure.times > 0 and failure.method == method and re.search(failure.path, path):
                    failure.times -= 1
                    return failure
        return None

    def files(self, repo_id: str) -> dict[str, bytes]:
        return self.repos[repo_id].files

    def uploads(self) -> list[tuple[str, str]]:
        """Requests that carry file content (preupload, LFS, commit): empty if nothing was sent."""
        marks = ("/preupload/", "/commit/", "/info/lfs/", "/lfs-upload/")
        return [r for r in self.requests if any(m in r[1] for m in marks)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, as httpx expects; every reply has a length
    timeout = REQUEST_TIMEOUT_S
    server_version = "FakeHub/1"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence stderr noise
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise _Reply(413, {"error": "request too large for the fake Hub"})
        return self.rfile.read(length)

    def _chunked_body(self) -> bytes:
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _Reply(413, {"error": "request too large for the fake Hub"})
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.hub.token}"

    def _dispatch(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.hub.lock:
            self.hub.requests.append((method, path))
        try:
            body = self._body() if method in ("POST", "PUT") else b""
            failure = self.hub._failure_for(method, path)
            if failure is not None and failure.status is None:
                self.close_connection = True             # no reply at all: the client sees it drop
                self.connection.shutdown(2)
                return None
            if failure is not None:
                raise _Reply(failure.status, failure.payload)
            for route_method, pattern, handler, needs_auth in ROUTES:
                match = re.fullmatch(pattern, path)
                if route_method == method and match:
                    if needs_auth and not self._authorised():
                        raise _Reply(401, {"error": "Invalid credentials in Authorization header"})
                    status, payload = handler(self, body, **match.groupdict())
                    return self._send(status, payload)
            raise _Reply(404, {"error": f"fake Hub has no route {method} {path}"})
        except _Reply as reply:
            self._send(reply.status, reply.payload, reply.headers)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- routes ---------------------------------------------------------------------------
    def create_repo(self, body: bytes) -> tuple[int, object]:
        payload = json.loads(body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") \
            else payload["name"]
        url = f"{self.hub.url}/{TYPE_PREFIX[repo_type]}{repo_id}"
        owners, namespace = self.hub.owners, repo_id.split("/")[0]
        if owners is not None and namespace not in owners:      # the real Hub's words
            raise _Reply(403, {"error": f"You don't have the rights to create a {repo_type} under the "
                                        f"namespace \"{namespace}\""})
        with self.hub.lock:
            if repo_id in self.hub.repos:
                raise _Reply(409, {"error": "You already created this repo", "url": url})
            private = payload.get("visibility", "private" if payload.get("private") else "public")
            self.hub.add_repo(repo_id, repo_type, private=private == "private")
        return 200, {"url": url, "name": repo_id}

    def repo_info(self, body: bytes, kind: str, repo_id: str,
                  rev: str | None = None) -> tuple[int, object]:
        repo = self._repo(PLURAL[kind], repo_id)
        siblings = [{"rfilename": p} for p in sorted(repo.files)]
        return 200, {"id": repo.repo_id, "private": repo.private, "sha": repo.sha,
                     "siblings": siblings, "disabled": False, "gated": False}

    def validate_yaml(self, body: bytes) -> tuple[int, object]:
        content = json.loads(body)["content"]
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as err:
            raise _Reply(400, {"errors": [{"message": f"invalid YAML: {err}"}]})
        if meta is not None and not isinstance(meta, dict):
            raise _Reply(400, {"errors": [{"message": "metadata must be a YAML mapping"}]})
        return 200, {"errors": [], "warnings": []}

    def preupload(self, body: bytes, kind: str, repo_id: str, rev: str) -> tuple[int, object]:
        repo = self._writable(self._repo(PLURAL[kind], repo_id))
        files = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_BYTES or b"\0" in sample
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                          "shouldIgnore": False, "oid": _oid(repo, f["path"])})
        return 200, {"files": files, "commitOid": repo.sha}

    def lfs_batch(self, body: bytes, prefix: str, repo_id: str) -> tuple[int, object]:
        self._repo(PLURAL.get((prefix or "").rstrip("/"), "model"), repo_id)
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise _Reply(400, {"message": "fake Hub only accepts uploads"})
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}/{obj['size']}"},
                    "verify": {"href": f"{self.hub.url}/lfs-verify"}}
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}   # never "xet"

    def lfs_put(self, body: bytes, oid: str, size: str) -> tuple[int, object]:
        if hashlib.sha256(body).hexdigest() != oid or len(body) != int(size):
            raise _Reply(400, {"error": "uploaded bytes do not match the announced sha256/size"})
        with self.hub.lock:
            self.hub.lfs_objects[oid] = body
        return 200, None

    def lfs_verify(self, body: bytes) -> tuple[int, object]:
        obj = json.loads(body)
        data = self.hub.lfs_objects.get(obj["oid"])
        if data is None or len(data) != obj["size"]:
            raise _Reply(404, {"error": f"LFS object {obj['oid']} was not uploaded"})
        return 200, {}

    def commit(self, body: bytes, kind: str, repo_id: str, rev: str) -> tuple[int, object]:
        repo = self._writable(self._repo(PLURAL[kind], repo_id))
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _Reply(400, {"error": "commit payload must start with a header line"})
        staged, lfs_paths, deleted = self._stage(lines[1:])
        with self.hub.lock:
            for path in deleted:
                if path not in repo.files:
                    raise _Reply(404, {"error": f"cannot delete {path}: no such file"})
            for path in deleted:
                del repo.files[path]
                repo.lfs_paths.discard(path)
            for path, data in staged.items():
                repo.files[path] = data
            repo.lfs_paths.update(lfs_paths)
            header = lines[0]["value"]
            commit = Commit(repo_id, header.get("summary", ""), header.get("description", ""),
                            sorted(staged), sorted(lfs_paths), repo.sha)
            self.hub.commits.append(commit)
        url = f"{self.hub.url}/{TYPE_PREFIX[repo.repo_type]}{repo_id}/commit/{commit.oid}"
        return 200, {"commitUrl": url, "commitOid": commit.oid, "pullRequestUrl": None}

    def _stage(self, lines: list[dict]) -> tuple[dict[str, bytes], set[str], list[str]]:
        """Every operation checked before any is applied, so a bad commit changes nothing."""
        staged: dict[str, bytes] = {}
        lfs_paths: set[str] = set()
        deleted: list[str] = []
        for line in lines:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":
                staged[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.hub.lfs_objects.get(value["oid"])
                if data is None:
                    raise _Reply(400, {"error": f"LFS object {value['oid']} was never uploaded"})
                staged[value["path"]] = data
                lfs_paths.add(value["path"])
            elif key == "deletedFile":
                deleted.append(value["path"])
            else:
                raise _Reply(400, {"error": f"fake Hub does not support commit operation {key!r}"})
        return staged, lfs_paths, deleted

    def no_xet(self, body: bytes, **_: str) -> tuple[int, object]:
        raise _Reply(404, {"error": "the fake Hub does not offer Xet; use plain LFS"})

    def _writable(self, repo: Repo) -> Repo:
        owners = self.hub.owners
        if owners is not None and repo.repo_id.split("/")[0] not in owners \
                and repo.repo_id not in self.hub.writable:
            raise _Reply(403, {"error": f"You don't have the rights to write to {repo.repo_id}"})
        return repo

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or repo.repo_type != repo_type:
            raise _Reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return repo


def _oid(repo: Repo, path: str) -> str | None:
    """The Hub's oid of a file already there (git blob sha1 or LFS sha256), so the client can
    skip unchanged files exactly as it does against the real Hub."""
    data = repo.files.get(path)
    if data is None:
        return None
    if path in repo.lfs_paths:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Reply(Exception):
    def __init__(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers


_ID = r"(?P<repo_id>[^/]+/[^/]+)"
ROUTES = [
    ("POST", r"/api/repos/create", _Handler.create_repo, True),
    ("GET", rf"/api/(?P<kind>models|datasets|spaces)/{_ID}(?:/revision/(?P<rev>.+))?",
     _Handler.repo_info, True),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml, True),
    ("POST", rf"/api/(?P<kind>models|datasets|spaces)/{_ID}/preupload/(?P<rev>.+)",
     _Handler.preupload, True),
    ("POST", rf"/api/(?P<kind>models|datasets|spaces)/{_ID}/commit/(?P<rev>.+)",
     _Handler.commit, True),
    ("GET", rf"/api/(?P<kind>models|datasets|spaces)/{_ID}/xet-write-token/(?P<rev>.+)",
     _Handler.no_xet, False),
    ("POST", rf"/(?P<prefix>datasets/|spaces/)?{_ID}\.git/info/lfs/objects/batch",
     _Handler.lfs_batch, True),
    ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)", _Handler.lfs_put, False),
    ("POST", r"/lfs-verify", _Handler.lfs_verify, True),
]


def serve(monkeypatch=None, lifetime_s: float = 300.0) -> FakeHub:
    """Start a fake Hub. With pytest's ``monkeypatch``, also point this process at it:
    ``HF_ENDPOINT`` and ``HF_TOKEN`` set, Xet turned off (see the module docstring)."""
    hub = FakeHub(lifetime_s=lifetime_s).start()
    if monkeypatch is not None:
        from huggingface_hub import constants

        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return hub
