"""The paper's comparison (RoboFail Section 5), reproduced from one config.

``config/paper.yaml`` names, per task, the models to compare (roster names: bundled, or built
with ``robofail zoo build TASK``) and the search settings every model gets. :func:`reproduce`
runs one search per model (a finished run is kept, an interrupted one resumed), writes the
paper's figures per task (stacked failure modes, radar with entropy, heatmap, grouped bars: the
regular report of that task's runs) and, across all models, the entropy table and a figure of
entropy against how broadly each model fails.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import pathlib
from typing import Callable

import numpy as np

from . import interrupts, resources
from .config import SearchConfig, load_search_config, read_yaml
from .errors import ConfigError, UnknownNameError, strict_fields
from .files import written_whole
from .perturbations import FACTORS
from .report import ModelRow, align, load_run, model_table, pyplot, save_figure, write_report
from .scenes.tasks import get_task
from .search import PAPER_SEARCHER
from .stats import FAILS
from .store import RunStore
from .zoo import Roster, Zoo

DEFAULT_PAPER_CONFIG = resources.path("config", "paper.yaml")


@dataclasses.dataclass(frozen=True)
class PaperSettings:
    """The search every model gets (overrides of the search config)."""

    searcher: str = PAPER_SEARCHER
    budget: int = 240
    nominal_episodes: int = 20
    num_workers: int = 2
    seed: int = 0
    search_config: str = ""  # empty: config/search.yaml
    zoo: str = "zoo"  # folder of models built with `robofail zoo build`


@dataclasses.dataclass(frozen=True)
class PaperConfig:
    settings: PaperSettings
    tasks: dict  # task -> [model names]

    @classmethod
    def load(cls, path=DEFAULT_PAPER_CONFIG) -> "PaperConfig":
        data = read_yaml(path, "paper config")
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict) or not data["tasks"]:
            raise ConfigError(f"{path} must be a mapping with `tasks:` (task -> list of model names)")
        settings = strict_fields(PaperSettings, {k: v for k, v in data.items() if k != "tasks"}, str(path))
        tasks = {}
        roster = {m.name: m for m in Roster.load().models}
        for task, models in data["tasks"].items():
            get_task(task)
            if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
                raise ConfigError(f"{path}: tasks.{task} must be a non-empty list of model names")
            repeated = sorted({m for m in models if models.count(m) > 1})
            if repeated:
                raise ConfigError(f"{path}: tasks.{task} lists {', '.join(map(repr, repeated))} more than once; "
                                  f"list each model once")
            for name in models:
                model = roster.get(name)
                if model is None:
                    raise ConfigError(f"{path}: tasks.{task}: {UnknownNameError('model of the zoo roster', name, roster)}")
                if model.task != task:
                    raise ConfigError(f"{path}: tasks.{task} lists {name!r}, a model of task {model.task}; "
                                      f"list it under {model.task}")
            tasks[task] = list(models)
        return cls(settings, tasks)

    def search_config(self, task: str, policy: str) -> SearchConfig:
        s = self.settings
        base = load_search_config(s.search_config) if s.search_config else load_search_config()
        return base.replace(task=task, policy=policy, searcher=s.searcher, budget=s.budget, num_workers=s.num_workers,
                            seed=s.seed).replace(nominal_episodes=s.nominal_episodes, report=False)


def plan(config: PaperConfig) -> list[tuple[str, str, str]]:
    """(task, model name, policy spec) for every model, checked to exist before any search starts."""
    zoo = Zoo(config.settings.zoo)
    return [(task, name, zoo.resolve(name)) for task, names in config.tasks.items() for name in names]


def reproduce(config: PaperConfig, out, say: Callable[[str], None] = print, observer=None) -> pathlib.Path:
    """Runs every search not finished yet under ``out/runs``, then writes ``out/report``;
    ``observer`` (a RunObserver class) watches each search."""
    from .run import policy_record, resolve_catalog, run_search
    out = pathlib.Path(out)
    report = out / "report"
    if report.exists():
        raise ConfigError(f"{report} exists: a finished comparison is never overwritten; choose another --out")
    jobs = plan(config)
    folders: dict[str, list[pathlib.Path]] = {}
    for i, (task, name, spec) in enumerate(jobs, 1):
        folder = out / "runs" / name
        folders.setdefault(task, []).append(folder)
        search = config.search_config(task, spec)
        if RunStore.finished_run_of(folder, search.to_dict(), policy_record(search), resolve_catalog(search).definitions()):
            say(f"[{i}/{len(jobs)}] {name}: finished earlier, kept")
            continue
        say(f"[{i}/{len(jobs)}] {name} on {task}: {search.searcher}, {search.budget} episodes -> {folder}")
        run_search(search, folder, resume=(folder / "run.json").is_file(), observer=observer() if observer else None)
    with written_whole(report) as partial:
        for task, runs in folders.items():
            write_report(runs, partial / task, with_gallery=False)
        write_summary(folders, partial)
        interrupts.check()  # a Ctrl-C that a library swallowed on the way leaves no comparison
    return report / "index.html"


@dataclasses.dataclass(frozen=True)
class EntropyRow(ModelRow):
    """One model of the entropy table (the paper's Table 2, with the calibrated numbers beside it):
    its report row (``model`` is its roster name) and what the comparison adds."""
    task: str
    algo: str | None
    obs: str | None  # None: a model outside the roster
    mean_p_fail: float | None  # over the perturbations tried
    failing_modes: int  # classified as failing
    # Episodes under perturbations that change only what a camera sees (Factor.APPEARANCE), and
    # how many failed: a policy that reads no camera cannot notice them.
    appearance_episodes: int
    appearance_failures: int


def entropy_table(folders: dict) -> list[EntropyRow]:
    """Per model: task, algorithm, observations, nominal success, the two entropies, and how
    broadly it fails (mean P(fail) over the perturbations, modes classified as failing)."""
    roster = {m.name: m for m in Roster.load().models}
    rows = []
    for task, runs in folders.items():
        loaded = [load_run(f) for f in runs]
        for run, row in zip(loaded, model_table(loaded, align(loaded)[0])):
            modes = [m for m in run.result.table.perturbed if m.trials]
            model = roster.get(run.folder.name)
            appearance = [m for m in modes if getattr(FACTORS.get(m.factor), "APPEARANCE", False)]
            rows.append(EntropyRow(
                **{**dataclasses.asdict(row), "model": run.folder.name}, task=task,
                algo=model.algo if model else run.record.policy.get("algo"), obs=model.obs if model else None,
                mean_p_fail=float(np.mean([m.p_fail for m in modes])) if modes else None,
                failing_modes=sum(m.status == FAILS for m in modes),
                appearance_episodes=sum(m.trials for m in appearance),
                appearance_failures=sum(m.failures for m in appearance)))
    return rows


def _spearman(x, y) -> float | None:
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    rx, ry = (np.argsort(np.argsort(v)).astype(float) for v in zip(*pairs))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def point_labels(rows) -> list[tuple[float, float, str]]:
    """One label per point of the entropy figure: models at the same point (two that never fail
    sit at 0, 0) share it, named without their task where they share that too, so no two labels
    are drawn over each other."""
    points: dict[tuple[float, float], list] = {}
    for r in rows:
        if r.p_fail_entropy is not None and r.mean_p_fail is not None:
            points.setdefault((round(r.p_fail_entropy, 3), round(r.mean_p_fail, 3)), []).append(r)
    return [(x, y, ", ".join(r.model.split("_", 1)[-1] if len({m.task for m in same}) == 1 else r.model for r in same))
            for (x, y), same in points.items()]


def write_summary(folders: dict, out: pathlib.Path) -> None:
    rows = entropy_table(folders)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, task in enumerate(folders):
        mine = [r for r in rows if r.task == task and r.p_fail_entropy is not None and r.mean_p_fail is not None]
        ax.scatter([r.p_fail_entropy for r in mine], [r.mean_p_fail for r in mine], label=task,
                   color=plt.get_cmap("tab10")(k))
    for x, y, text in point_labels(rows):
        ax.annotate(text, (x, y), fontsize=6)
    ax.set_xlabel("entropy of the failure distribution (nats)")
    ax.set_ylabel("mean P(fail) over perturbations")
    title = "Entropy against broad vulnerability, every model"
    ax.set_title(title)
    ax.legend(fontsize=8)
    figure = save_figure(fig, out / "figures", "entropy_vs_vulnerability", title, {})  # its numbers: the rows
    mean_p_fail = [r.mean_p_fail for r in rows]
    correlations = {"spearman(p_fail_entropy, mean_p_fail)": _spearman([r.p_fail_entropy for r in rows], mean_p_fail),
                    "spearman(pi_entropy, mean_p_fail)": _spearman([r.pi_entropy for r in rows], mean_p_fail)}
    (out / "figures.json").write_text(json.dumps({"models": [dataclasses.asdict(r) for r in rows],
                                                  "correlations": correlations,
                                                  "tasks": {t: f"{t}/figures.json" for t in folders},
                                                  "figure": {"png": figure.png, "svg": figure.svg}}, indent=2))
    e = html.escape

    def fmt(v, spec=".3f"):
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    def worst(r):  # a model that never failed has no worst mode
        return f"{e(r.worst_mode)} ({fmt(r.worst_p_fail, '.2f')})" if r.worst_mode else "–"
    lines = ["<!doctype html><html><head><meta charset='utf-8'><title>RoboFail: the paper's comparison</title>"
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{border:1px solid #ccc;"
             "padding:3px 7px}table{border-collapse:collapse;font-size:13px}</style></head><body>",
             "<h1>The paper's comparison, reproduced</h1><p>Per task, the paper's four figures are in that task's "
             "report: " + ", ".join(f"<a href='{e(t)}/index.html'>{e(t)}</a>" for t in folders) + ".</p>",
             "<h2>Entropy table</h2><table><tr><th>task</th><th>model</th><th>nominal success</th><th>entropy of π</th>"
             "<th>entropy of P(fail)</th><th>mean P(fail)</th><th>failing modes</th><th>worst mode</th>"
             "<th>appearance failures</th></tr>"]
    for r in rows:
        lines.append(f"<tr><td>{e(r.task)}</td><td>{e(r.model)}</td><td>{fmt(r.nominal_success, '.0%')}</td>"
                     f"<td>{fmt(r.pi_entropy)}</td><td>{fmt(r.p_fail_entropy)}</td><td>{fmt(r.mean_p_fail)}</td>"
                     f"<td>{r.failing_modes}</td><td>{worst(r)}</td>"
                     f"<td>{r.appearance_failures} of {r.appearance_episodes}</td></tr>")
    lines.append("</table><p>" + "; ".join(f"{e(k)} = {fmt(v, '.2f')}" for k, v in correlations.items()) + "</p>")
    lines.append(f"<img src='{figure.png}' style='max-width:100%'></body></html>")
    (out / "index.html").write_text("\n".join(lines))
