"""The run store: one folder per run, safe to kill at any moment.

    runs/NAME/
      run.json        config, seed, versions, policy (with checkpoint sha256), what each
                      perturbation did (factor and parameters), started/finished
      episodes.sqlite one row per finished episode, committed as it arrives
      ppo/            searcher checkpoints (PPO), tensorboard/ logs
      summary.json    the failure-mode table, written when the run finishes

A finished run is never overwritten. An unfinished one resumes only with the same config, the
same policy (name and checkpoint sha256) and the same perturbation definitions, under the same
versions of what decides an episode's outcome (OUTCOME_COMPONENTS: robofail_ros, robosuite,
MuJoCo, robomimic, torch, numpy). A finished run is extended to a larger budget in a new folder,
under the same conditions: the new run starts from a copy of its episodes, and it stays as it was.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import pathlib
import re
import sqlite3

from .analysis import RunResult
from .config import SearchConfig
from .episode import EpisodeOutcome
from .errors import ConfigError, record_from_dict, unknown_keys
from .files import leftovers, written_whole
from .provenance import PolicyRecord
from .versions import component_versions


RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # a run folder's name under output_dir: no ".."
RUN_ID_RULE = ("run_id must be a run folder's name: 1-200 letters, digits, '.', '_' or '-', starting with a letter or "
               "digit (or empty: the current run)")
# What a damaged run folder's error adds: the fix, and that nothing was lost.
_UNTOUCHED = "nothing in the folder was changed (a search can start afresh in another --out)"


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_same_policy(folder, recorded: PolicyRecord, now: PolicyRecord) -> None:
    """A run continued or kept must be of the policy that runs now: the same name and checkpoint."""
    if not recorded.same_checkpoint(now):
        raise ConfigError(f"run {folder} was recorded with policy {recorded.name!r} (sha256 {recorded.sha256}), but "
                          f"the policy now is {now.name!r} (sha256 {now.sha256}); restore that checkpoint, or start "
                          f"a new --out")


# What decides an episode's outcome: a run resumed (or kept for a comparison) under other
# versions of these would mix episodes of two simulators, or two builds of robofail's scenes.
OUTCOME_COMPONENTS = ("robofail_ros", "robosuite", "mujoco", "robomimic", "torch", "numpy")


def _check_same_versions(folder, recorded: dict) -> None:
    now = component_versions()
    changed = [f"{name} {recorded[name]} -> {now.get(name)}" for name in OUTCOME_COMPONENTS
               if name in recorded and recorded[name] != now.get(name)]
    if changed:
        raise ConfigError(f"run {folder} was recorded under other versions ({', '.join(changed)}); its episodes would "
                          "mix with, or be compared to, this installation's as if one simulator ran both: continue it "
                          "where those versions are installed, or choose a new --out")


def perturbation_differences(recorded: dict, now: dict) -> str:
    """How the perturbation definitions a run recorded differ from ``now`` ("" when they do not;
    runs recorded before run.json held the definitions, an empty ``recorded``, are not compared)."""
    if not recorded or recorded == now:
        return ""
    changed = [name for name in recorded if name in now and recorded[name] != now[name]]
    parts = [f"{name} was {json.dumps(recorded[name])}, is now {json.dumps(now[name])}" for name in changed[:3]]
    parts += [f"{len(changed) - 3} more changed"] if len(changed) > 3 else []
    for what, names in (("added", [n for n in now if n not in recorded]), ("removed", [n for n in recorded if n not in now])):
        if names:
            parts.append(f"{what}: {', '.join(names[:5])}" + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
    return "; ".join(parts)


def _check_same_perturbations(folder, recorded: dict, now: dict) -> None:
    """The run's perturbations must mean what they meant when its episodes ran: a catalog entry
    edited, added or removed since (under the same config and catalog path) is refused."""
    differences = perturbation_differences(recorded, now)
    if differences:
        raise ConfigError(f"run {folder} was recorded with other perturbation definitions ({differences}); its "
                          "episodes would be counted under perturbations that now mean something else: restore the "
                          "catalog it ran, or choose a new --out")


def _check_same_outcomes(folder, record: "RunRecord", policy: PolicyRecord, perturbations: dict) -> None:
    """A run's recorded episodes count for a run now (resumed, kept, extended) only under the same
    policy checkpoint, perturbation definitions and versions of what decides an outcome."""
    _check_same_policy(folder, record.policy, policy)
    _check_same_perturbations(folder, record.perturbations, perturbations)
    _check_same_versions(folder, record.versions)


# How a run is carried out, never which episodes it asks for or their outcomes: a resume (on a
# larger machine, say) and a finished run kept for a comparison may differ in these.
HOW_IT_RUNS = ("num_workers", "report", "output_dir")
# What an extension may change besides: the budget, which it must raise.
EXTENDABLE = ("budget", *HOW_IT_RUNS)


def _check_extendable(source: "RunStore", config: dict, policy: PolicyRecord, perturbations: dict) -> None:
    """Refuses to extend ``source`` unless it is a finished run of the same search with a smaller
    budget, and the same policy, definitions and versions."""
    record = source.record
    if not record.finished:
        raise ConfigError(f"run {source.folder} is not finished; finish it first (`robofail search --resume --out "
                          f"{source.folder}`), then extend it")
    _same_search(source.folder, config, record.config, "run {folder} ran another search (differs in: {differ}); an "
                 "extension continues it as it ran, changing only " + ", ".join(EXTENDABLE), may_differ=EXTENDABLE)
    if config["budget"] <= record.config["budget"]:
        raise ConfigError(f"run {source.folder} had a budget of {record.config['budget']}; an extension needs a larger "
                          f"one (--budget; got {config['budget']})")
    _check_same_outcomes(source.folder, record, policy, perturbations)


def _differing_keys(config: dict, recorded: dict) -> list[str]:
    """The keys whose values differ between two configs."""
    return sorted(k for k in set(config) | set(recorded)
                  if json.dumps(config.get(k), sort_keys=True, default=str)
                  != json.dumps(recorded.get(k), sort_keys=True, default=str))


def _same_search(folder, config: dict, recorded: dict, refusal: str, may_differ=HOW_IT_RUNS) -> None:
    """Refuses ``config`` for the run in ``folder`` (``refusal``, formatted with the folder and the
    keys) if it differs from the recorded one in more than the keys ``may_differ``."""
    differ = [key for key in _differing_keys(config, recorded) if key not in may_differ]
    if differ:
        raise ConfigError(refusal.format(folder=folder, differ=", ".join(differ)))


@dataclasses.dataclass
class Resumption:
    """A resume of an interrupted run (``RunRecord.resumed``): when, and how it ran from then on
    where that differs from the run's config (only the keys HOW_IT_RUNS may), so that a run
    started on 2 workers and finished on 16 says so."""
    at: str
    changed: dict = dataclasses.field(default_factory=dict)  # config key -> its value from then on

    def __str__(self) -> str:
        return self.at + "".join(f", {key} {value}" for key, value in self.changed.items())


@dataclasses.dataclass
class Extension:
    """What a run records of the finished run whose episodes it started from (``RunRecord.extends``)."""
    run: str  # that run's folder
    started: str
    finished: str
    config_hash: str
    episodes: int  # copied from it


@dataclasses.dataclass
class RunRecord:
    """run.json: what a run was started with, and when."""
    config: dict  # the search config as the run used it (SearchConfig.to_dict)
    config_hash: str
    policy: PolicyRecord
    versions: dict = dataclasses.field(default_factory=dict)  # component -> version (versions.component_versions)
    perturbations: dict = dataclasses.field(default_factory=dict)  # name -> factor and parameters (Catalog.definitions)
    seed: int | None = None
    started: str | None = None
    finished: str | None = None  # set once, when summary.json is written
    resumed: list[Resumption] = dataclasses.field(default_factory=list)
    extends: Extension | None = None

    @classmethod
    def read(cls, path: pathlib.Path) -> "RunRecord":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read as a run record ({type(exc).__name__}: {exc}); it is damaged or "
                              f"was not written by robofail; {_UNTOUCHED}") from None
        missing = [key for key in ("config", "config_hash") if not isinstance(data, dict) or key not in data]
        if missing:
            raise ConfigError(f"{path} is not a robofail run record (it lacks {', '.join(missing)}); {_UNTOUCHED}")
        problem = unknown_keys(cls, data, str(path))
        if problem:
            raise ConfigError(f"{problem}; {_UNTOUCHED}")
        try:
            policy = PolicyRecord.from_dict(data.get("policy"), where=f"{path} (its policy)")
            extends = data.get("extends")
            if extends is not None:
                extends = record_from_dict(Extension, extends, f"{path} (the run it extends)")
            resumed = data.get("resumed", [])
            if not isinstance(resumed, list):
                raise ConfigError(f"{path} (its resumes) is not a list: {resumed!r:.80}")
            # Runs recorded before session 31 hold only each resume's time.
            resumed = [Resumption(entry) if isinstance(entry, str)
                       else record_from_dict(Resumption, entry, f"{path} (resume {number})")
                       for number, entry in enumerate(resumed, 1)]
        except ConfigError as exc:
            raise ConfigError(f"{exc}; {_UNTOUCHED}") from None
        return cls(**{**data, "policy": policy, "extends": extends, "resumed": resumed})

    def write(self, path: pathlib.Path) -> None:
        with written_whole(path) as partial:  # a kill mid-write would leave a run no resume can read
            partial.write_text(json.dumps(dataclasses.asdict(self), indent=2, default=str))

    @property
    def search_config(self) -> SearchConfig:
        """The run's config as a SearchConfig (a config this robofail refuses is a clear error)."""
        return SearchConfig.from_dict(self.config, where="the config in run.json")


class RunStore:
    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self._db: sqlite3.Connection | None = None

    # ---------------------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, folder, config: dict, policy: PolicyRecord, perturbations: dict,
               resume: bool = False, extend=None) -> "RunStore":
        """Opens a new run folder, or (``resume``) an unfinished one with the same config, policy,
        perturbation definitions and versions. ``extend``: a finished run folder the new run starts
        from (its episodes are copied; it is left as it was), of the same search with a smaller budget."""
        if resume and extend is not None:
            raise ConfigError("resume continues the unfinished run in --out, extend starts a new one from a finished "
                              "run: give one of them")
        if extend is not None and pathlib.Path(folder).resolve().is_relative_to(pathlib.Path(extend).resolve()):
            raise ConfigError(f"the extension's run folder {folder} would lie in the run it extends, {extend}, which "
                              "stays as it is: choose an --out outside it")
        store = cls(folder)
        if store.folder.exists() and not store.folder.is_dir():
            raise ConfigError(f"the run folder {store.folder} is a file, not a folder; choose another --out")
        try:
            store.folder.mkdir(parents=True, exist_ok=True)
            store._lock()
        except OSError as exc:
            raise ConfigError(f"cannot use the run folder {store.folder}: {exc.strerror or exc}; choose a writable --out") from None
        try:  # every refusal below leaves the folder as it was, and unlocked
            if store.record_path.exists() and store._continue(config, policy, perturbations, resume):
                return store
            store._start(config, policy, perturbations, resume, extend)
        except ConfigError:
            store.close()
            raise
        return store

    def _continue(self, config: dict, policy: PolicyRecord, perturbations: dict, resume: bool) -> bool:
        """True: the unfinished run in this folder is resumed; False: it never ran, and is discarded
        for the new run. Anything else is refused."""
        record = self.record
        if record.finished:
            raise ConfigError(f"run {self.folder} is finished and is never overwritten; "
                              + ("there is nothing to resume (`robofail report` shows it); " if resume else "")
                              + "choose another --out")
        if not resume:
            if self._never_ran():
                # It stopped before its first episode (a policy this scene cannot run, say), and the lock
                # says no process is running it: nothing to keep, so a new run takes its place.
                self._discard_record()
                return False
            count = self.count()
            raise ConfigError(f"run {self.folder} exists (unfinished, {count} episode{'s' * (count != 1)}); "
                              "continue it with --resume or choose another --out")
        _same_search(self.folder, config, record.config,
                     "run {folder} was started with a different config (differs in: {differ}); resume with the same "
                     "config (only " + ", ".join(HOW_IT_RUNS) + " may differ), or start a new --out")
        _check_same_outcomes(self.folder, record, policy, perturbations)
        record.resumed.append(Resumption(_now(), {key: config[key] for key in HOW_IT_RUNS
                                                  if key in config and config[key] != record.config.get(key)}))
        record.write(self.record_path)
        return True

    def _start(self, config: dict, policy: PolicyRecord, perturbations: dict, resume: bool, extend) -> None:
        """Writes a new run's record, after the episodes of the run it extends if any."""
        if resume:
            raise ConfigError(f"--resume given but {self.folder} holds no run; drop --resume to start it")
        # A new run starts in a new or empty folder: a stale episodes.sqlite there would be read as
        # this run's episodes, and whatever else is there is not ours to overwrite.
        others = sorted(p.name for p in self.folder.iterdir() if p.name != ".lock")
        if others:
            listing = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise ConfigError(f"{self.folder} holds no run (no run.json) but is not empty ({listing}); a new run "
                              f"needs a new or empty --out")
        record = RunRecord(config, config_hash(config), policy=policy, versions=component_versions(),
                           perturbations=perturbations, seed=config.get("seed"), started=_now())
        if extend is not None:
            source = RunStore.open(extend)
            try:
                _check_extendable(source, config, policy, perturbations)
                self._copy_episodes(source)  # before run.json: a folder without it is no run yet
                record.extends = Extension(str(source.folder), source.record.started, source.record.finished,
                                           source.record.config_hash, self.count())
            except ConfigError:
                self._discard_record()  # what was copied: the folder was empty, and stays so
                raise
            finally:
                source.close()
        record.write(self.record_path)

    @classmethod
    def finished_run_of(cls, folder, config: dict, policy: PolicyRecord, perturbations: dict) -> bool:
        """Whether ``folder`` holds a finished run of ``config`` and this policy (name, sha256), to be
        kept instead of run again (compare, reproduce-paper); a finished run of another config or
        checkpoint there is a ConfigError."""
        store = cls(folder)
        if not store.record_path.is_file():
            return False
        record = store.record
        if not record.finished:
            return False
        _same_search(store.folder, config, record.config, "{folder} holds a finished run of another config (differs "
                     "in: {differ}), which is never overwritten; choose another --out")
        _check_same_outcomes(store.folder, record, policy, perturbations)
        return True

    @classmethod
    def open(cls, folder) -> "RunStore":
        store = cls(folder)
        try:
            is_run = store.record_path.is_file()
        except OSError as exc:  # a name too long for the file system, say
            raise ConfigError(f"{str(store.folder)[:200]} cannot be a run folder: {exc.strerror or exc}") from None
        if not is_run:
            raise ConfigError(f"{store.folder} is not a robofail run folder (no run.json); give a folder made by `robofail search`")
        return store

    @property
    def record_path(self) -> pathlib.Path:
        return self.folder / "run.json"

    @property
    def record(self) -> RunRecord:
        return RunRecord.read(self.record_path)

    @property
    def summary_path(self) -> pathlib.Path:
        return self.folder / "summary.json"

    def finish(self, result: RunResult) -> None:
        """Writes the run's RunResult as summary.json and marks the run finished."""
        with written_whole(self.summary_path) as partial:
            partial.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        record = self.record
        record.finished = _now()
        record.write(self.record_path)

    def summary(self) -> RunResult:
        """The finished run's result, as ``finish`` wrote it."""
        try:
            return RunResult.from_dict(json.loads(self.summary_path.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"run {self.folder} has no summary.json (it is written when the run finishes); finish it "
                              f"with `robofail search --resume --out {self.folder}`") from None
        except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"run {self.folder}: its summary.json is not one this robofail writes "
                              f"({type(exc).__name__}: {exc}); it is damaged, or a run of another robofail version "
                              f"needs that version to read it; {_UNTOUCHED}") from None

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

    def _copy_episodes(self, source: "RunStore") -> None:
        """The source run's episodes, as recorded (ids, seeds, workers, times), into this run's store."""
        path = source.folder / "episodes.sqlite"
        if path.exists():
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read only: the source is never written
            try:
                db.backup(self.db)
            except sqlite3.DatabaseError as exc:
                raise ConfigError(f"{path} is not a readable episode store ({exc}); it is damaged or was not written "
                                  f"by robofail; nothing was changed") from None
            finally:
                db.close()

    def count(self) -> int:
        if not (self.folder / "episodes.sqlite").exists():
            return 0
        return self.db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]

    def _never_ran(self) -> bool:
        """No episode recorded, and nothing in the folder but the record, the empty store and the lock."""
        return self.count() == 0 and {p.name for p in self.folder.iterdir()} <= {"run.json", "episodes.sqlite", ".lock"}

    def _discard_record(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        for name in ("run.json", "episodes.sqlite"):
            (self.folder / name).unlink(missing_ok=True)

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
        for stale in leftovers(self.record_path) + leftovers(self.summary_path):  # of a killed process: none writes now
            stale.unlink()

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()
            self._lock_file = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
