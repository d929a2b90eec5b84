"""Everything that talks to the Hugging Face Hub: push a dataset or a merged model (and its
adapter), private unless asked, with a card that states what was measured.

Order of work, so that a failure never leaves a half-pushed or wrongly public repo:
1. find the token (``HF_TOKEN`` wins over ``hf auth login``'s saved one, PITFALLS #17) and the
   endpoint (``PushConfig.endpoint``, else ``HF_ENDPOINT`` read now, not at import);
2. create every target repo explicitly (``exist_ok``) and read back its visibility:
   ``private=`` is ignored for a repo that already exists (PITFALLS #16), so a public repo
   when private was asked is an error *before* anything is uploaded;
3. one commit per repo with all files and the README card.

The token is handed to ``HfApi`` and never logged, printed or written; errors are scrubbed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import httpx2  # huggingface_hub 2.x sends through httpx2 and does not wrap its transport errors
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from . import __version__, cards
from .config import PushConfig
from .errors import VocabtuneError
from .local_paths import SCRUBBED_FILES, hidden, scrubbed
from .modelio import adapter_digest

log = logging.getLogger(__name__)

MAX_SHARD_BYTES = 500 * 1024 * 1024   # per parquet file, as datasets.push_to_hub's default
DATASET_META = "vocabtune.json"       # written by build: per-split stats, vocabulary, commands
TRAIN_META = ("vocabtune_train.json", "train_config.json", "training_config.json")
REPORT = "report.json"                # written by finetune.py evaluate (top-level base/finetuned)
MERGE_META = "vocabtune_merge.json"   # written by finetune.py merge: base_model, language
ADAPTER_CONFIG = "adapter_config.json"
SKIP_DIR_PREFIXES = ("checkpoint-", ".")
SKIP_SUFFIXES = (".tmp", ".lock")
LOGIN_HINT = "run `hf auth login` (or set HF_TOKEN) with a token that has write access"


@dataclass(frozen=True)
class Hub:
    """A connected client. ``token`` is kept only to scrub it from error messages."""

    api: HfApi = field(repr=False)
    endpoint: str
    token: str = field(repr=False)

    def repo_url(self, repo_id: str, repo_type: str) -> str:
        prefix = constants.REPO_TYPES_URL_PREFIXES.get(repo_type, "")
        return f"{self.endpoint}/{prefix}{repo_id}"


# -- public API ---------------------------------------------------------------------------------

def push_dataset(cfg: PushConfig) -> str:
    """Push a ``save_to_disk`` dataset as parquet under ``data/`` plus a dataset card.

    Why not ``DatasetDict.push_to_hub``: it cannot check visibility before uploading, and it
    needs far more of the Hub (tree listings, card downloads) than a create + commit. The files
    it would write are the same: ``data/<split>-00000-of-0000N.parquet`` with the features in
    the parquet metadata, so ``load_dataset(repo)`` gives ``Audio(sampling_rate=16000)`` back.
    """
    folder = find_dataset_folder(cfg.path)
    dataset = load_dataset_dict(folder)
    hub = connect(cfg)
    repo = prepare_repo(hub, cfg.repo, "dataset", cfg.public)
    with tempfile.TemporaryDirectory(prefix="vocabtune-push-") as tmp:
        files, globs = write_parquet(dataset, Path(tmp))
        facts = dataset_facts(folder, dataset, cfg.repo, globs)
        commit(hub, repo, "dataset", files, cards.dataset_card(facts),
               f"Upload dataset {folder.name} (vocabtune {__version__})")
    return repo.url


def push_model(cfg: PushConfig) -> str:
    """Push a merged model folder with its model card; with ``cfg.adapter`` the LoRA adapter
    too, to its own repo. Both repos are checked before either receives a byte."""
    folder = check_model_folder(cfg.path)
    check_repo_id(cfg.repo)                     # both ids (adapter_target checks its own)
    adapter_repo = adapter_target(cfg)          # ... before a repo is made for either
    adapter = check_adapter_folder(cfg.adapter) if cfg.adapter else None
    if adapter is not None:
        check_adapter_was_merged(folder, adapter)
    hub = connect(cfg)                          # the token, before the export's minute of work
    facts = model_facts(folder, adapter, cfg.repo, adapter_repo)     # may fail (report.json): ...
    adapter_facts = model_facts(adapter, adapter, adapter_repo, None) if adapter is not None else None
    files = {**folder_files(folder), **export_files(folder, cfg.ctranslate2)}   # ... before any repo
    repo = prepare_repo(hub, cfg.repo, "model", cfg.public)
    adapter_ready = prepare_repo(hub, adapter_repo, "model", cfg.public) if adapter_repo else None
    if cfg.ctranslate2:
        facts = replace(facts, ct2_folder=f"ctranslate2-{cfg.ctranslate2}")
    commit(hub, repo, "model", files, cards.model_card(facts),
           f"Upload fine-tuned Whisper {folder.name} (vocabtune {__version__})")
    if adapter_facts is not None and adapter_ready is not None:
        commit(hub, adapter_ready, "model", folder_files(adapter),
               cards.adapter_card(adapter_facts, cfg.repo),
               f"Upload LoRA adapter {adapter.name} (vocabtune {__version__})")
    return repo.url


# -- connection and repos -----------------------------------------------------------------------

def connect(cfg: PushConfig) -> Hub:
    """Client for ``cfg.endpoint``, else ``HF_ENDPOINT`` as set *now* (huggingface_hub reads
    it once at import, which tests and users changing it at run time would miss)."""
    endpoint = (cfg.endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    with hub_errors(endpoint, "read your Hugging Face token", token=""):
        token = get_token()
    if not token:
        raise VocabtuneError("no Hugging Face token found", hint=LOGIN_HINT)
    api = HfApi(endpoint=endpoint, token=token, library_name="vocabtune",
                library_version=__version__)
    return Hub(api, endpoint, token)


@dataclass(frozen=True)
class ReadyRepo:
    """A repo checked for visibility, with the files it held then (for stale_files)."""

    repo_id: str
    url: str
    files: tuple[str, ...]


def prepare_repo(hub: Hub, repo_id: str, repo_type: str, public: bool) -> ReadyRepo:
    """Create the repo if needed, then insist its visibility is what was asked (PITFALLS #16)."""
    check_repo_id(repo_id)
    with hub_errors(hub.endpoint, f"create {repo_type} repo {repo_id}", hub.token):
        refused = create_repo(hub, repo_id, repo_type, public)
        try:
            info = hub.api.repo_info(repo_id, repo_type=repo_type)
        except HfHubHTTPError:
            if refused is None:
                raise
            raise refused from None        # not there, and we may not create it: say why
    private = info.private
    url = hub.repo_url(repo_id, repo_type)
    if not public and private is not True and refused is not None:
        raise VocabtuneError(
            f"{url} already exists and is public, under {repo_id.split('/')[0]!r}, where your token "
            "cannot create repos: it may not be yours; nothing was uploaded",
            hint="check --repo (your own namespace, e.g. --repo you/name)")
    if not public and private is not True:
        raise VocabtuneError(
            f"{url} already exists and is public; nothing was uploaded",
            hint=f"make it private at {url}/settings, or pass --public to publish to it")
    if public and private:
        raise VocabtuneError(
            f"{url} already exists and is private, but --public was asked; nothing was uploaded",
            hint=f"make it public at {url}/settings, or push without --public")
    log.info("%s repo %s is ready (%s)", repo_type, repo_id, "private" if private else "public")
    return ReadyRepo(repo_id, url, tuple(s.rfilename for s in (info.siblings or [])))


def create_repo(hub: Hub, repo_id: str, repo_type: str, public: bool) -> HfHubHTTPError | None:
    """Create the repo unless it exists. Returns the refusal (401/402/403) when the Hub would
    not create it, which still leaves a repo that exists and we may write to (an
    organisation's) to push to. Why not ``create_repo(exist_ok=True)``: it hides that
    refusal, and on any endpoint but huggingface.co it then fails on its own URL parsing
    ("Invalid HF URI … Unrecognized host")."""
    try:
        hub.api.create_repo(repo_id, repo_type=repo_type, private=not public)
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 409:                # exists already: its visibility is checked next
            return None
        if status in (401, 402, 403):
            return err
        raise
    return None


def check_repo_id(repo_id: str) -> None:
    """owner/name, by the Hub's own rules (huggingface_hub's validate_repo_id: no "--" or
    "..", no leading or trailing "-" or ".", ASCII, at most 96 characters), before any
    request, so a bad id is never mistaken for a network problem."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    hint = "use owner/name of letters, digits, - _ and ., e.g. --repo you/my-voice"
    if not cards.HUB_ID.match(repo_id or "") or repo_id.count("/") != 1:
        raise VocabtuneError(f"not a Hub repo id: {repo_id!r}", hint=hint)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise VocabtuneError(f"not a Hub repo id: {repo_id!r} ({str(err).split('.')[0]})", hint=hint) from None


def commit(hub: Hub, repo: ReadyRepo, repo_type: str, files: dict[str, Path], card: str,
           message: str) -> None:
    """One commit: all files plus README.md, so the repo never shows a half-pushed state."""
    repo_id = repo.repo_id
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=_upload_form(f)) for p, f in files.items()]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    stale = stale_files(list(repo.files), set(files) | {"README.md"})
    if stale:
        log.info("removing %d file(s) of an earlier push that this one does not have: %s", len(stale),
                 ", ".join(stale[:5]) + (", …" if len(stale) > 5 else ""))
    ops += [CommitOperationDelete(path_in_repo=p) for p in stale]
    size = sum(f.stat().st_size for f in files.values())
    log.info("uploading %d files (%.1f MB) to %s", len(ops), size / 1e6, repo_id)
    with hub_errors(hub.endpoint, f"upload to {repo_id}", hub.token):
        hub.api.create_commit(repo_id, ops, commit_message=message, repo_type=repo_type)


# Files a push of ours writes: an earlier push's copy that this push lacks is stale (an
# export under another quantization, a report since removed, the shards of a dataset that
# changed) and goes in the same commit. Anything else in the repo is the person's own: kept.
PUSHED_PATTERNS = ("ctranslate2-*/*", "report.*", "vocabtune_*.json", "data/*.parquet",
                   "*.safetensors", "*config.json", "tokenizer*", "vocab.json", "merges.txt",
                   "normalizer.json", "added_tokens.json", "special_tokens_map.json")


def stale_files(existing: list[str], pushed: set[str]) -> list[str]:
    """Paths in the repo that an earlier push of ours wrote and this one does not (pure)."""
    from fnmatch import fnmatch

    return sorted(p for p in existing if p not in pushed
                  and any(fnmatch(p, pattern) for pattern in PUSHED_PATTERNS))


def _upload_form(path: Path) -> str | bytes:
    """The file itself, or for vocabtune's small metadata files their bytes with local
    folder names cut to the last part (local_paths.py)."""
    if path.name not in SCRUBBED_FILES:
        return str(path)
    return scrubbed(path.name, path.read_bytes())


@contextlib.contextmanager
def hub_errors(endpoint: str, action: str, token: str) -> Iterator[None]:
    """Hub and network failures become one line: what we tried, where, and why."""
    try:
        yield
    except (HfHubHTTPError, httpx2.HTTPError, OfflineModeIsEnabled, OSError, ValueError,
            RuntimeError) as err:
        message, hint = _hub_problem(err, f"cannot {action}", endpoint)
        raise VocabtuneError(_scrub(message, token), hint=hint) from None


def _hub_problem(err: BaseException, what: str, endpoint: str, detail: str = "") -> tuple[str, str]:
    """(message, hint) for a failed Hub call. huggingface_hub wraps a failed LFS upload in a
    RuntimeError ("Error while uploading 'x' to the Hub."): the HTTP or network error under
    it decides the hint, as it does for any other request."""
    cause = err.__cause__
    if isinstance(err, (ValueError, RuntimeError)) and isinstance(cause, (HfHubHTTPError, httpx2.HTTPError)):
        return _hub_problem(cause, what, endpoint, f"{_first_line(err).rstrip('.')}: ")
    where = f"{what} on {endpoint}: {detail}"
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        return f"{where}HTTP {status}: {_server_words(err)}", _http_hint(status)
    why = f"{type(err).__name__}: {_first_line(err)}"
    if isinstance(err, (httpx2.ConnectError, httpx2.ConnectTimeout, OfflineModeIsEnabled, ConnectionRefusedError)):
        return f"{what}: {detail}{endpoint} is unreachable ({why})", "check your network connection and HF_ENDPOINT"
    if isinstance(err, (httpx2.HTTPError, ConnectionError, TimeoutError)):
        return (f"{where}the connection broke off ({why})",
                "try again; pushing again replaces what an earlier push put there")
    if isinstance(err, OSError):   # a local file that vanished or cannot be read mid-upload
        return f"{what}: {_first_line(err)}", "check that the folder is complete and readable"
    if cause is not None:          # client-side checks
        why = f"{_first_line(err)} ({_first_line(cause)})"
    else:
        why = _first_line(err)
    return f"{where}{why}", "try again; if it persists, check the files"


def _server_words(err: HfHubHTTPError) -> str:
    """The server's own explanation ("You don't have the rights to create a model under the
    namespace …") where it sent one; the client's first line only names the status."""
    server = (getattr(err, "server_message", None) or "").strip()
    return server.splitlines()[0] if server else _first_line(err)


def _http_hint(status: int | None) -> str:
    if status == 401:
        return "your token was rejected: " + LOGIN_HINT
    if status == 403:
        return "your token cannot write there: use a write token, or a namespace you own"
    if status == 404:
        return "check the repo id and that your token can see it"
    return "try again later; if it persists, check https://status.huggingface.co"


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


# -- dataset ------------------------------------------------------------------------------------

def find_dataset_folder(path: Path | None) -> Path:
    """The folder ``save_to_disk`` wrote; ``None`` or ``data/`` means the only one under it."""
    path = Path(path) if path is not None else Path("data")
    if (path / "dataset_dict.json").is_file():
        return path
    candidates = sorted(p.parent for p in path.glob("*/dataset_dict.json")) if path.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise VocabtuneError("no dataset here (no dataset_dict.json)", file=path,
                             hint="run `prepare_data.py build` first, or pass --dataset DIR")
    names = ", ".join(str(c) for c in candidates)
    raise VocabtuneError(f"several datasets here ({names})", file=path,
                         hint="choose one with --dataset DIR")


def load_dataset_dict(folder: Path) -> Any:
    """The dataset as saved; audio is never decoded here (no torchcodec needed, PITFALLS #15)."""
    import datasets

    try:
        dataset = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as err:
        raise VocabtuneError(f"cannot read the dataset ({_first_line(err)})", file=folder,
                             hint="rebuild it with `prepare_data.py build`") from None
    if not isinstance(dataset, datasets.DatasetDict) or not len(dataset):
        raise VocabtuneError("not a dataset with splits", file=folder,
                             hint="rebuild it with `prepare_data.py build`")
    return dataset


def write_parquet(dataset: Any, out: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Each split as ``data/<split>-0000i-of-0000N.parquet`` (the Hub's own naming, which its
    viewer and ``load_dataset`` resolve), sharded at :data:`MAX_SHARD_BYTES`."""
    files: dict[str, Path] = {}
    globs: dict[str, str] = {}
    (out / "data").mkdir(parents=True, exist_ok=True)
    for split, ds in dataset.items():
        shards = max(1, math.ceil(ds.data.nbytes / MAX_SHARD_BYTES))
        for i in range(shards):
            name = f"data/{split}-{i:05d}-of-{shards:05d}.parquet"
            ds.shard(num_shards=shards, index=i, contiguous=True).to_parquet(str(out / name))
            files[name] = out / name
        globs[split] = f"data/{split}-*"
    log.info("wrote %d parquet files for splits %s", len(files), ", ".join(globs))
    return files, globs


def dataset_facts(folder: Path, dataset: Any, repo_id: str,
                  globs: dict[str, str]) -> cards.DatasetFacts:
    """Card facts from build's ``vocabtune.json`` where recorded, else from the data itself."""
    meta = read_json(folder / DATASET_META)
    recorded = meta.get("splits") if isinstance(meta.get("splits"), dict) else {}
    splits = []
    for name, ds in dataset.items():
        facts = cards.split_from_dict(name, recorded.get(name) or {})
        splits.append(facts or cards.SplitFacts(name, ds.num_rows, audio_seconds(ds)))
    commands = meta.get("commands") or meta.get("command") or ()
    commands = (commands,) if isinstance(commands, str) else tuple(str(c) for c in commands)
    return cards.DatasetFacts(
        repo_id=repo_id, splits=tuple(splits), terms=cards.terms_from_dict(meta),
        language=str(meta.get("language") or "en"), commands=commands,
        vocabtune_version=str(meta.get("vocabtune_version") or meta.get("version") or __version__),
        data_files=globs, columns=tuple(next(iter(dataset.values())).column_names))


def audio_seconds(ds: Any) -> float:
    """Sum of ``end - start`` read as arrow columns, so no audio is decoded."""
    if not {"start", "end"} <= set(ds.column_names):
        return 0.0
    table = ds.select_columns(["start", "end"]).with_format("arrow")[:]
    starts, ends = table.column("start").to_pylist(), table.column("end").to_pylist()
    return float(sum(e - s for s, e in zip(starts, ends) if s is not None and e is not None))


def read_json(path: Path) -> dict[str, Any]:
    """A metadata file written by another stage; absent or unreadable means "not recorded"."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("ignoring %s: %s", path, _first_line(err))
        return {}
    return data if isinstance(data, dict) else {}


# -- model --------------------------------------------------------------------------------------

def check_model_folder(path: Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise VocabtuneError("model folder not found", file=path,
                             hint="pass the folder `finetune.py merge` wrote: models/<name>-merged")
    if (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file():
        raise VocabtuneError("this is a LoRA adapter, not a merged model", file=path,
                             hint="merge it first (`finetune.py merge --adapter DIR`), "
                                  "or pass it with --adapter")
    if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
        raise VocabtuneError("not a merged model folder (needs config.json and *.safetensors)",
                             file=path, hint="run `finetune.py merge` first")
    return path


def check_adapter_folder(path: Path) -> Path:
    path = Path(path)
    if not (path / ADAPTER_CONFIG).is_file():
        raise VocabtuneError(f"not a LoRA adapter folder (no {ADAPTER_CONFIG})", file=path,
                             hint="pass a checkpoint or runs/<name>/best as --adapter")
    return path


def check_adapter_was_merged(folder: Path, adapter: Path) -> None:
    """Refuse an adapter other than the one merged into ``folder``: its card says "the same
    weights merged into the base model" and sends readers to that model's results, and its
    report.json would fill that model's card. A run trained again into the same folder after
    the merge is another adapter too, so the weights are compared (merge records their
    sha256), not folder names. A merge that recorded none cannot be checked."""
    merge = read_json(folder / MERGE_META)
    recorded = merge.get("adapter_sha256")
    if not recorded or adapter_digest(adapter) == recorded:
        return
    was = merge.get("adapter") or "another adapter"
    raise VocabtuneError(f"this is not the adapter merged into {folder} (that was {was}, with other weights)",
                         file=adapter, hint="pass the adapter that was merged, or merge this one first "
                                            "(`finetune.py merge --adapter DIR`)")


def adapter_target(cfg: PushConfig) -> str | None:
    """Repo for the adapter: ``--adapter-repo``, else ``<repo>-lora``."""
    if cfg.adapter_repo and not cfg.adapter:
        raise VocabtuneError("--adapter-repo needs --adapter DIR (the adapter folder to push)")
    if not cfg.adapter:
        return None
    target = cfg.adapter_repo or f"{cfg.repo}-lora"
    if target == cfg.repo:
        raise VocabtuneError("--adapter-repo must differ from --repo",
                             hint=f"e.g. --adapter-repo {cfg.repo}-lora")
    check_repo_id(target)
    return target


def model_facts(folder: Path, adapter: Path | None, repo_id: str,
                adapter_repo: str | None) -> cards.ModelFacts:
    """Card facts from the JSON files beside the model (and the adapter, if given)."""
    places = [folder] + ([adapter] if adapter is not None and adapter != folder else [])
    train = next((m for p in places for n in TRAIN_META if (m := read_json(p / n))), {})
    merge = next((m for p in places if (m := read_json(p / MERGE_META))), {})
    adapter_config = next((m for p in places if (m := read_json(p / ADAPTER_CONFIG))), {})
    report = next((m for p in places if (m := read_report(p))), {})
    train = cards.training_record(train, merge, report)
    if not report:
        log.warning("no %s beside %s: the card will say the results were not measured "
                    "(run `finetune.py evaluate` first to include them)", REPORT, folder)
    facts = cards.model_facts_from_dicts(repo_id, train, adapter_config, report, adapter_repo)
    # "data/voice" is both a folder and a valid-looking Hub id: only the disk can tell.
    # An absolute local path is named by its last part only (local_paths.py), as in the
    # metadata files: "/home/you/data/voice" says nothing to a reader but too much of you.
    return replace(facts, base_model_is_local=_is_local(facts.base_model),
                   dataset_is_local=_is_local(facts.dataset),
                   base_model=facts.base_model and hidden(facts.base_model),
                   dataset=facts.dataset and hidden(facts.dataset),
                   eval_dataset=facts.eval_dataset and hidden(facts.eval_dataset))


def read_report(folder: Path) -> dict[str, Any]:
    """``report.json`` beside a model, {} if there is none. Unlike the other metadata files
    it is not skipped when it cannot be read: the card would then say the results were not
    measured, and the damaged file would be uploaded beside it, to a repo that may be public."""
    from .fsutil import load_json_object

    path = Path(folder) / REPORT
    if not path.is_file():
        return {}
    return load_json_object(path, hint=f"run finetune.py evaluate --model {folder} again to rewrite it, "
                                       "or delete it to push without results")


def _is_local(name: str | None) -> bool:
    return bool(name) and Path(str(name)).expanduser().exists()


def export_files(folder: Path, quantization: str | None) -> dict[str, Path]:
    """With ``--ctranslate2 Q``: the faster-whisper export of the merged model (made now,
    beside it), pushed under ``ctranslate2-Q/`` so one repo serves both engines."""
    if not quantization:
        return {}
    from .export import export_ctranslate2

    out = export_ctranslate2(folder, quantization=quantization)   # replaces only an earlier export
    return {f"ctranslate2-{quantization}/{p}": f for p, f in folder_files(out).items()}


def folder_files(folder: Path) -> dict[str, Path]:
    """Files to push, by path in the repo: everything but README.md (the card replaces it),
    hidden and temporary files, and training checkpoints."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or rel.as_posix() == "README.md":
            continue
        if any(part.startswith(SKIP_DIR_PREFIXES) for part in rel.parts[:-1]):
            continue
        if rel.name.startswith(".") or rel.name.endswith(SKIP_SUFFIXES):
            continue
        files[rel.as_posix()] = path
    return files
