"""The run store: one folder per run, safe to kill at any moment.

    runs/NAME/
      run.json        config, seed, versions, policy (with checkpoint sha256), started/finished
      episodes.sqlite one row per finished episode, committed as it arrives
      ppo/            searcher checkpoints (PPO), tensorboard/ logs
      summary.json    the failure-mode table, written when the run finishes

A finished run is never overwritten. An unfinished one resumes only with the same config and
the same policy (name and checkpoint sha256).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import pathlib
import sqlite3

from .episode import EpisodeOutcome
from .errors import ConfigError
from .versions import component_versions


# What a damaged run folder's error adds: the fix, and that nothing was lost.
_UNTOUCHED = "nothing in the folder was changed (a search can start afresh in another --out)"


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunStore:
    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self._db: sqlite3.Connection | None = None

    # ---------------------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, folder, config: dict, policy_info: dict, resume: bool = False) -> "RunStore":
        """Opens a new run folder, or (``resume``) an unfinished one with the same config."""
        store = cls(folder)
        try:
            store.folder.mkdir(parents=True, exist_ok=True)
            store._lock()
        except OSError as exc:
            raise ConfigError(f"cannot use the run folder {store.folder}: {exc.strerror or exc}; choose a writable --out") from None
        meta_path = store.folder / "run.json"
        if meta_path.exists():
            try:
                meta = store.meta
            except ConfigError:
                store.close()
                raise
            if meta.get("finished"):
                store.close()
                raise ConfigError(f"run {store.folder} is finished and is never overwritten; choose another --out")
            if not resume:
                store.close()
                raise ConfigError(f"run {store.folder} exists (unfinished, {store.count()} episodes); "
                                  "continue it with --resume or choose another --out")
            if meta["config_hash"] != config_hash(config):
                store.close()
                changed = sorted(k for k in set(config) | set(meta["config"])
                                 if json.dumps(config.get(k), sort_keys=True, default=str)
                                 != json.dumps(meta["config"].get(k), sort_keys=True, default=str))
                raise ConfigError(f"run {store.folder} was started with a different config (differs in: "
                                  f"{', '.join(changed)}); resume with the same config, or start a new --out")
            recorded = meta.get("policy") or {}
            for key in ("name", "sha256"):
                if recorded.get(key) != policy_info.get(key):
                    store.close()
                    raise ConfigError(f"run {store.folder} was recorded with policy {recorded.get('name')!r} (sha256 "
                                      f"{recorded.get('sha256')}), but the policy now is {policy_info.get('name')!r} (sha256 "
                                      f"{policy_info.get('sha256')}); restore that checkpoint, or start a new --out")
            meta.setdefault("resumed", []).append(_now())
            meta_path.write_text(json.dumps(meta, indent=2))
            return store
        if resume:
            store.close()
            raise ConfigError(f"--resume given but {store.folder} holds no run; drop --resume to start it")
        meta = {"config": config, "config_hash": config_hash(config), "seed": config.get("seed"),
                "policy": policy_info, "versions": component_versions(), "started": _now(), "finished": None}
        meta_path.write_text(json.dumps(meta, indent=2, default=str))
        return store

    @classmethod
    def open(cls, folder) -> "RunStore":
        store = cls(folder)
        if not (store.folder / "run.json").is_file():
            raise ConfigError(f"{store.folder} is not a robofail run folder (no run.json); give a folder made by `robofail search`")
        return store

    @property
    def meta(self) -> dict:
        path = self.folder / "run.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read as a run record ({type(exc).__name__}: {exc}); it is damaged or "
                              f"was not written by robofail; {_UNTOUCHED}") from None
        missing = [key for key in ("config", "config_hash") if not isinstance(meta, dict) or key not in meta]
        if missing:
            raise ConfigError(f"{path} is not a robofail run record (it lacks {', '.join(missing)}); {_UNTOUCHED}")
        return meta

    def finish(self, result) -> None:
        """Writes the run's RunResult as summary.json and marks the run finished."""
        (self.folder / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
        meta = self.meta
        meta["finished"] = _now()
        (self.folder / "run.json").write_text(json.dumps(meta, indent=2, default=str))

    # ----------------------------------------------------------------------------- episodes
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            path = self.folder / "episodes.sqlite"
            db = sqlite3.connect(path, timeout=30)
            try:
                db.execute("""CREATE TABLE IF NOT EXISTS episodes (
                    episode_id INTEGER PRIMARY KEY, perturbations TEXT NOT NULL, seed INTEGER NOT NULL,
                    success INTEGER NOT NULL, steps INTEGER NOT NULL, sim_error TEXT, worker TEXT,
                    recorded TEXT NOT NULL)""")
                db.commit()
            except sqlite3.DatabaseError as exc:
                db.close()
                raise ConfigError(f"{path} is not a readable episode store ({exc}); it is damaged or was not written "
                                  f"by robofail; {_UNTOUCHED}") from None
            self._db = db
        return self._db

    def append(self, outcome: EpisodeOutcome) -> bool:
        """Records a finished episode; False if that episode id is already recorded (never counted twice)."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (outcome.episode_id, json.dumps(list(outcome.perturbations)), outcome.seed, int(outcome.success),
             outcome.steps, outcome.sim_error, outcome.worker, _now()))
        self.db.commit()
        return cur.rowcount == 1

    def outcomes(self) -> list[EpisodeOutcome]:
        if not (self.folder / "episodes.sqlite").exists():
            return []
        rows = self.db.execute("SELECT episode_id, perturbations, seed, success, steps, sim_error, worker "
                               "FROM episodes ORDER BY episode_id").fetchall()
        return [EpisodeOutcome(tuple(json.loads(p)), seed, bool(s), steps, err, eid, worker)
                for eid, p, seed, s, steps, err, worker in rows]

    def count(self) -> int:
        if not (self.folder / "episodes.sqlite").exists():
            return 0
        return self.db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]

    def _lock(self) -> None:
        """One process per run folder: a second one (a --resume while the first still runs) is refused."""
        import fcntl
        self._lock_file = open(self.folder / ".lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise ConfigError(f"run {self.folder} is in use by another robofail process; wait for it to end "
                              "(or stop it) before resuming, or choose another --out") from None

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()
            self._lock_file = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
