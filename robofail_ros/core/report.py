"""Reports of finished runs: the paper's figures, the calibrated numbers, a failure gallery.

    write_report(["runs/A", "runs/B"], "reports/AB")

writes ``index.html`` (one self-contained page: figures embedded, opens offline), every figure
as PNG and SVG under ``figures/``, ``figures.json`` (the numbers behind every figure), and
``gallery/`` (perturbed scene and frame strip of a failing rollout per top failure mode, each
replayed from its seed, with the command that replays it).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import json
import math
import pathlib

import numpy as np

from . import interrupts
from .analysis import NOMINAL, FailureMode, RunResult, counted, verdict_text
from .config import SearchConfig
from .errors import ConfigError, PolicyError
from .files import written_whole
from .store import RunRecord, RunStore

RADAR_SPOKES = 24  # more perturbations than this make a radar plot unreadable: the top ones are shown
TOP_MODES = 8  # failure modes named in the cross-model bars; the rest are "other"
GALLERY_MODES = 3  # failure modes per run shown in the gallery


@dataclasses.dataclass
class RunData:
    folder: pathlib.Path
    label: str
    record: RunRecord
    config: SearchConfig  # record.config, read once
    result: RunResult

    @property
    def modes(self) -> dict[str, FailureMode]:
        return {m.name: m for m in self.result.table.modes}

    @property
    def nominal_p_fail(self) -> float | None:
        """The unperturbed failure rate, the reference every mode's rate is read against; None
        when the unperturbed scene was never run."""
        nominal = self.result.table.mode(NOMINAL)
        return nominal.p_fail if nominal and nominal.trials else None


@dataclasses.dataclass(frozen=True)
class Figure:
    title: str
    data: dict  # the numbers behind it, as figures.json holds them
    png: str  # paths relative to the report folder
    svg: str


@dataclasses.dataclass(frozen=True)
class ModelRow:
    """One model of the report's Models table: the paper's comparison numbers and the calibrated ones."""
    model: str
    sha256: str | None
    searcher: str
    episodes: int
    failures: int
    sim_errors: int
    nominal_success: float | None  # None: the unperturbed scene was never run
    nominal_trials: int
    pi_entropy: float | None
    p_fail_entropy: float | None
    mean_severity: float | None  # None: no perturbation tried
    worst_mode: str | None
    worst_p_fail: float | None


@dataclasses.dataclass(frozen=True)
class GalleryItem:
    """A top failure mode's first failing episode, replayed from its seed for the report."""
    run: str
    mode: str
    label: str
    p_fail: float
    trials: int
    episode_id: int
    seed: int
    perturbations: list[str]
    steps: int
    reproduced: bool  # the replay failed as the recorded episode did
    replay_success: bool
    replay_steps: int
    scene: str  # image paths relative to the report folder
    strip: str
    command: str  # the `robofail replay` command that shows it again


def load_run(folder) -> RunData:
    """A finished run's metadata and failure-mode table; unfinished or empty runs are refused."""
    store = RunStore.open(folder)
    try:
        record, episodes = store.record, store.count()
        if not episodes:
            raise ConfigError(f"run {folder} has no episodes; run the search before reporting on it")
        if not record.finished:
            raise ConfigError(f"run {folder} is unfinished ({episodes} episodes so far); finish it with "
                              f"`robofail search --resume --out {folder}` before reporting on it")
        result = store.summary()
    finally:
        store.close()
    return RunData(store.folder, record.policy.name, record, record.search_config, result)


def align(runs: list[RunData]) -> tuple[list[str], list[str]]:
    """The perturbations every run tried to measure (in the first run's catalog order) and notes
    on what alignment left out. Runs of different tasks are refused."""
    tasks = {r.config.task for r in runs}
    if len(tasks) > 1:
        raise ConfigError(f"runs of different tasks cannot be compared ({', '.join(sorted(tasks))}); "
                          "report on runs of one task together")
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):  # same policy twice: tell the runs apart by folder
        for r in runs:
            r.label = f"{r.label} ({r.folder.name})"
    from .perturbations import DEFAULT_CATALOG, Catalog
    catalog = Catalog.load(runs[0].config.catalog or DEFAULT_CATALOG).names
    names = [[m.name for m in r.result.table.perturbed] for r in runs]
    shared = sorted((n for n in names[0] if all(n in other for other in names[1:])),
                    key=lambda n: catalog.index(n) if n in catalog else len(catalog))
    notes = []
    for r, own in zip(runs, names):
        dropped = sorted(set(own) - set(shared))
        if dropped:
            notes.append(f"{r.label}: {len(dropped)} perturbations not in every run's catalog are left out "
                         f"of the comparison ({', '.join(dropped[:10])}{', ...' if len(dropped) > 10 else ''})")
    if not shared:
        raise ConfigError("these runs share no perturbation; compare runs over the same catalog")
    return shared, notes


# ---------------------------------------------------------------------------------- figures
def pyplot():
    """matplotlib.pyplot on the headless Agg backend, imported only when a figure is drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, folder: pathlib.Path, name: str, title: str, data: dict) -> Figure:
    """Writes ``fig`` as <folder>/<name>.png and .svg, closes it, and returns it as a Figure."""
    folder.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(folder / f"{name}.{ext}", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return Figure(title, data, f"figures/{name}.png", f"figures/{name}.svg")


def radar(run: RunData, perturbations: list[str], folder: pathlib.Path) -> Figure:
    """Two radar panels for one run: calibrated P(fail) with its 95% Wilson interval and its
    anytime-valid bounds (which decide each mode's class, written on its spoke), and the paper's pi(a|o)."""
    modes = run.modes
    tried = [n for n in perturbations if modes[n].trials]
    # The highest rates first; among equal rates the best-measured (most trials).
    spokes = sorted(tried, key=lambda n: (-modes[n].p_fail, -modes[n].trials))[:RADAR_SPOKES]
    spokes = [n for n in perturbations if n in spokes]  # catalog order keeps related factors together
    has_pi = all(modes[n].pi is not None for n in perturbations)
    data = {"run": run.label, "perturbations": spokes, "p_fail": [modes[n].p_fail for n in spokes],
            "ci_low": [modes[n].ci_low for n in spokes], "ci_high": [modes[n].ci_high for n in spokes],
            "cs_low": [modes[n].cs_low for n in spokes], "cs_high": [modes[n].cs_high for n in spokes],
            "status": [modes[n].status for n in spokes], "rank": [modes[n].rank for n in spokes],
            "pi": [modes[n].pi for n in spokes] if has_pi else None, "nominal_p_fail": run.nominal_p_fail,
            "left_out": len(tried) - len(spokes), "untried": len(perturbations) - len(tried)}
    plt = pyplot()
    panels = 2 if has_pi else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 6.2), subplot_kw={"projection": "polar"}, squeeze=False,
                             gridspec_kw={"wspace": 0.45})
    angles = np.linspace(0, 2 * np.pi, len(spokes), endpoint=False)
    closed = np.append(angles, angles[:1])

    def ring(values):
        return np.append(values, values[:1])

    ax = axes[0, 0]
    if spokes:
        ax.fill_between(closed, ring(data["ci_low"]), ring(data["ci_high"]), color="tab:red", alpha=0.2,
                        label="95% Wilson interval")
        ax.plot(closed, ring(data["p_fail"]), color="tab:red", marker="o", ms=3, label="P(fail | perturbation)")
        for bound, label in ((data["cs_low"], "anytime-valid bounds (decide the class)"), (data["cs_high"], None)):
            ax.plot(closed, ring(bound), color="grey", ls=":", lw=1, label=label)
    if run.nominal_p_fail is not None:  # a policy that fails unperturbed too: the rates read against it
        ax.plot(np.linspace(0, 2 * np.pi, 100), np.full(100, run.nominal_p_fail), color="black", ls="--", lw=1,
                label=f"unperturbed P(fail) {run.nominal_p_fail:.2f}")
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75])  # no "1.0" on the rim, where the spoke labels are
    ax.set_title("Calibrated failure rate (failures / trials)", pad=22)
    if has_pi:
        ax = axes[0, 1]
        if spokes:
            ax.plot(closed, ring(data["pi"]), color="tab:blue", marker="o", ms=3, label="π(a|o)")
            ax.fill(closed, ring(data["pi"]), color="tab:blue", alpha=0.15)
            from matplotlib.ticker import MaxNLocator
            ax.yaxis.set_major_locator(MaxNLocator(4))  # a few rings: eight crowd the labels
        ax.set_title("Paper's π(a|o): the searcher's preference (sums to 1)", pad=22)
    for ax in axes[0]:
        ax.set_xticks(angles)
        # The class on the spoke: a figure never shows an undecided mode as if it were a finding.
        ax.set_xticklabels([f"{n}\n{status}" + (f" #{rank}" if rank else "")
                            for n, status, rank in zip(spokes, data["status"], data["rank"])], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_rlabel_position(180 / max(1, len(spokes)))  # the rate labels between two spokes, not on one
        ax.legend(loc="lower left", bbox_to_anchor=(-0.15, -0.24), fontsize=8)
    note = f" (top {len(spokes)} of {len(tried)} tried)" if data["left_out"] else ""
    fig.suptitle(f"{run.label}: failure modes{note}", fontsize=12, y=1.04)  # above the panel titles, which two-line spoke labels push up
    return save_figure(fig, folder, f"radar_{_slug(run.label)}", f"Radar: {run.label}", data)


def distribution(runs: list[RunData], perturbations: list[str]) -> tuple[list[str], dict[str, list[float]]]:
    """Each run's failure rates normalised over the shared perturbations (its failure-mode
    distribution, the calibrated counterpart of pi), with all but the top modes summed as 'other'."""
    shares = {}
    for r in runs:
        rates = np.array([r.modes[n].p_fail if r.modes[n].trials else 0.0 for n in perturbations])
        shares[r.label] = rates / rates.sum() if rates.sum() > 0 else rates
    mean = np.mean(list(shares.values()), axis=0)
    # Equal shares go in the first run's table order (its ranks first), as the table lists them.
    listed = {m.name: i for i, m in enumerate(runs[0].result.table.perturbed)}
    ordered = sorted(range(len(perturbations)), key=lambda i: (-mean[i], listed.get(perturbations[i], len(listed))))
    top = [perturbations[i] for i in ordered[:TOP_MODES] if mean[i] > 0]
    index = [perturbations.index(n) for n in top]
    out = {label: [float(s[i]) for i in index] + [float(s.sum() - s[index].sum())] for label, s in shares.items()}
    return top + ["other"], out


def stacked_bars(runs, perturbations, folder) -> Figure:
    names, shares = distribution(runs, perturbations)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(runs) + 3), 4.8))
    bottom = np.zeros(len(runs))
    colors = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        heights = np.array([shares[r.label][i] for r in runs])
        ax.bar([r.label for r in runs], heights, bottom=bottom, label=name,
               color="lightgrey" if name == "other" else colors(i % 10))
        bottom += heights
    ax.set_ylabel("share of the failure distribution")
    ax.set_title("Failure modes across models (failure rates normalised per model)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)
    return save_figure(fig, folder, "stacked_failure_modes", "Stacked failure modes", {"modes": names, "shares": shares})


def heatmap(runs, perturbations, folder) -> Figure:
    columns = [n for n in perturbations if any(r.modes[n].trials for r in runs)]
    matrix = np.array([[r.modes[n].p_fail if r.modes[n].trials else np.nan for n in columns] for r in runs])
    order = np.argsort(-np.nan_to_num(np.nanmean(np.where(np.isnan(matrix), -1, matrix), axis=0)), kind="stable")
    columns, matrix = [columns[i] for i in order], matrix[:, order]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(columns) + 2.5), 1.0 + 0.55 * len(runs)))
    cmap = plt.get_cmap("Reds").with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(runs)), [r.label for r in runs], fontsize=8)
    fig.colorbar(image, ax=ax, label="P(fail)", fraction=0.03)
    ax.set_title("P(fail) per model and perturbation (grey: not tried)", fontsize=10)
    data = {"models": [r.label for r in runs], "perturbations": columns,
            "p_fail": [[None if math.isnan(v) else float(v) for v in row] for row in matrix]}
    return save_figure(fig, folder, "heatmap", "Heatmap", data)


def grouped_bars(runs, perturbations, folder) -> Figure:
    names = distribution(runs, perturbations)[0][:-1] or perturbations[:TOP_MODES]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) * max(1, len(runs) / 2) + 2), 4.5))
    width = 0.8 / len(runs)
    data = {"modes": names, "models": {}}
    for k, r in enumerate(runs):
        ms = [r.modes[n] for n in names]
        p = np.array([m.p_fail if m.trials else 0.0 for m in ms])
        low = np.array([m.ci_low for m in ms])
        high = np.array([m.ci_high for m in ms])
        x = np.arange(len(names)) + (k - (len(runs) - 1) / 2) * width
        bars = ax.bar(x, p, width, label=r.label, yerr=[np.maximum(p - low, 0), np.maximum(high - p, 0)], capsize=2)
        # The anytime-valid bounds decide each mode's class and rank: drawn beside the Wilson
        # interval, with the class written on the bar, so a figure never shows an undecided mode
        # as if it were a finding.
        cs_low = np.array([m.cs_low if m.trials else 0.0 for m in ms])
        cs_high = np.array([m.cs_high if m.trials else 1.0 for m in ms])
        ax.errorbar(x + width / 4, p, yerr=[np.maximum(p - cs_low, 0), np.maximum(cs_high - p, 0)], fmt="none",
                    ecolor="grey", elinewidth=1, capsize=2, label="anytime-valid bounds (decide the class)" * (k == 0))
        for xi, m in zip(x, ms):
            ax.text(xi - width / 4, 0.01, m.status + (f" #{m.rank}" if m.rank else ""), rotation=90, ha="center", va="bottom",
                    fontsize=7)
        if r.nominal_p_fail is not None:  # each model's rates read against its own unperturbed rate
            ax.axhline(r.nominal_p_fail, color=bars.patches[0].get_facecolor(), ls="--", lw=1,
                       label=f"{r.label}: unperturbed P(fail) {r.nominal_p_fail:.2f}")
        data["models"][r.label] = {"p_fail": p.tolist(), "ci_low": low.tolist(), "ci_high": high.tolist(),
                                   "cs_low": cs_low.tolist(), "cs_high": cs_high.tolist(),
                                   "status": [m.status for m in ms], "rank": [m.rank for m in ms],
                                   "trials": [m.trials for m in ms], "nominal_p_fail": r.nominal_p_fail}
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("P(fail) with its 95% Wilson interval")
    ax.set_title("Top failure modes per model")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    return save_figure(fig, folder, "grouped_bars", "Grouped bars", data)


def model_table(runs, perturbations) -> list[ModelRow]:
    """Entropy and severity per model: the paper's comparison number and the calibrated ones."""
    rows, compared = [], set(perturbations)
    for r in runs:
        nominal = r.modes.get(NOMINAL)
        tried = [r.modes[n] for n in perturbations if r.modes[n].trials]
        # The table's worst among the modes compared; a model that never failed has none.
        worst = next((m for m in r.result.table.perturbed if m.failures and m.name in compared), None)
        rows.append(ModelRow(
            model=r.label, sha256=r.record.policy.sha256, searcher=r.config.searcher,
            episodes=r.result.episodes, failures=r.result.failures, sim_errors=r.result.sim_errors,
            nominal_success=None if r.nominal_p_fail is None else 1 - r.nominal_p_fail,
            nominal_trials=nominal.trials if nominal else 0,
            pi_entropy=r.result.pi_entropy, p_fail_entropy=r.result.p_fail_entropy,
            mean_severity=float(np.mean([m.severity for m in tried])) if tried else None,
            worst_mode=worst.name if worst else None,
            worst_p_fail=worst.p_fail if worst else None))
    return rows


# ---------------------------------------------------------------------------------- gallery
def gallery(run: RunData, folder: pathlib.Path, modes: int = GALLERY_MODES) -> list[GalleryItem]:
    """For each top failure mode of a run: its first failing episode replayed from the seed,
    the perturbed scene, a frame strip, and whether the replay reproduced the recorded outcome."""
    import imageio.v2 as imageio
    from .replay import Replayer, frame_strip, replay_command
    ranked = [m for m in run.result.table.perturbed if m.failures][:modes]
    if not ranked:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    replayer = Replayer(run.folder)  # one policy and one scene for every replay
    try:
        failing = [o for o in replayer.recorded.values() if o.failure and o.perturbations]
        for mode in ranked:
            # Prefer an episode with this perturbation alone: it shows this failure mode, not a mix.
            episode = min((o for o in failing if mode.name in o.perturbations),
                          key=lambda o: (len(o.perturbations), o.episode_id))
            replay = replayer.replay(episode.episode_id)
            stem = f"{_slug(run.label)}_{mode.name}_{episode.episode_id}"
            imageio.imwrite(folder / f"{stem}_scene.png", replay.frames[0])
            imageio.imwrite(folder / f"{stem}_strip.png", frame_strip(replay.frames))
            items.append(GalleryItem(
                run=run.label, mode=mode.name, label=mode.label, p_fail=mode.p_fail, trials=mode.trials,
                episode_id=episode.episode_id, seed=episode.seed, perturbations=list(episode.perturbations),
                steps=episode.steps, reproduced=replay.reproduced, replay_success=replay.outcome.success,
                replay_steps=replay.outcome.steps, scene=f"gallery/{stem}_scene.png",
                strip=f"gallery/{stem}_strip.png", command=replay_command(run.folder, episode.episode_id)))
    finally:
        replayer.close()
    return items


# ------------------------------------------------------------------------------------- page
def write_report(run_folders, out, with_gallery: bool = True) -> pathlib.Path:
    """Writes the report of one or more finished runs to the folder ``out`` (which must not
    hold a report already); returns the path of its index.html."""
    final = pathlib.Path(out)
    if (final / "index.html").exists():
        raise ConfigError(f"{final} already holds a report; choose another --out")
    if final.exists() and any(final.iterdir()):
        raise ConfigError(f"{final} exists and is not empty; choose another --out")
    given: dict[pathlib.Path, str] = {}
    for folder in map(str, run_folders):  # a model compared with itself would stand twice in every figure
        key = pathlib.Path(folder).resolve()
        if key in given:
            also = f" (as {given[key]} and {folder})" if given[key] != folder else ""
            raise ConfigError(f"run {folder} is given twice{also}; give each run once")
        given[key] = folder
    runs = [load_run(f) for f in run_folders]
    with written_whole(final) as partial:  # an interrupted report leaves no half-written folder
        index = _write(runs, partial, with_gallery)
        interrupts.check()  # a Ctrl-C that a library swallowed on the way still leaves no report
    return final / index.name


def _write(runs, out: pathlib.Path, with_gallery: bool) -> pathlib.Path:
    perturbations, notes = align(runs)
    figures_dir = out / "figures"
    figures = [radar(r, perturbations, figures_dir) for r in runs]
    if len(runs) > 1:
        figures += [stacked_bars(runs, perturbations, figures_dir), heatmap(runs, perturbations, figures_dir),
                    grouped_bars(runs, perturbations, figures_dir)]
    else:
        figures += [grouped_bars(runs, perturbations, figures_dir)]
    table = model_table(runs, perturbations)
    items = []
    for r in runs if with_gallery else []:
        # A run whose episodes cannot be replayed as recorded gets a note instead of a gallery; its
        # numbers stand and the report is written.
        if r.record.policy.external:
            notes = notes + [f"No failure gallery for {r.label}: its policy ran as a ROS node of your own (policy: "
                             "external), which robofail cannot start to replay an episode."]
            continue
        try:
            items += gallery(r, out / "gallery")
        except (ConfigError, PolicyError) as exc:  # its checkpoint or catalog changed since, say
            notes = notes + [f"No failure gallery for {r.label}: {exc}"]
    (out / "figures.json").write_text(json.dumps(
        {"perturbations": perturbations, "notes": notes, "figures": [dataclasses.asdict(f) for f in figures],
         "models": [dataclasses.asdict(row) for row in table], "gallery": [dataclasses.asdict(i) for i in items]},
        indent=2, default=str))
    index = out / "index.html"
    index.write_text(_page(runs, perturbations, notes, figures, table, items, out))
    return index


def _img(out: pathlib.Path, relative: str, alt: str) -> str:
    data = base64.b64encode((out / relative).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _fmt(value, spec=".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def _page(runs, perturbations, notes, figures, table, items, out) -> str:
    e = html.escape
    parts = [f"""<!doctype html><html><head><meta charset="utf-8"><title>RoboFail report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}
img{{max-width:100%}} table{{border-collapse:collapse;margin:1em 0;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}} th{{background:#f3f3f3}}
td:first-child,th:first-child{{text-align:left}} .note{{background:#fff6d5;padding:.5em 1em}}
code{{background:#f3f3f3;padding:1px 4px}} .fig{{margin:1.5em 0}} .muted{{color:#777;font-size:12px}}</style>
</head><body><h1>RoboFail report: {e(', '.join(r.label for r in runs))}</h1>
<p class="muted">Written {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} by robofail_ros.
Two numbers per perturbation: <b>P(fail)</b>, failures / trials with a 95% Wilson interval (calibrated), and
<b>π(a|o)</b>, the searcher's preference over perturbations as in the RoboFail paper (sums to 1; not a failure rate).
Each mode's class (fails, safe, undecided, untried) and rank rest on its anytime-valid bounds, drawn in grey beside the
Wilson interval in the bar chart and listed in the tables at the end.
Simulator errors are counted apart and never as policy failures.</p>"""]
    parts += [f'<p class="note">{e(n)}</p>' for n in notes]
    parts += _models_section(table)
    parts += _figures_section(figures, out)
    parts += _gallery_section(items, out)
    parts += _tables_section(runs, perturbations)
    parts += _metadata_section(runs)
    parts.append("</body></html>")
    return "\n".join(parts)


def _models_section(table) -> list[str]:
    e = html.escape
    parts = ["<h2>Models</h2><table><tr><th>model</th><th>searcher</th><th>episodes</th><th>policy failures</th>"
             "<th>sim errors</th><th>nominal success</th><th>entropy of π (nats)</th><th>entropy of P(fail)</th>"
             "<th>mean severity</th><th>worst mode</th><th>checkpoint sha256</th></tr>"]
    for row in table:
        nominal = f"{_fmt(row.nominal_success, '.0%')} of {row.nominal_trials}"
        worst = f"{row.worst_mode} ({_fmt(row.worst_p_fail, '.2f')})" if row.worst_mode else "–"
        parts.append(f"<tr><td>{e(row.model)}</td><td>{e(row.searcher)}</td><td>{row.episodes}</td>"
                     f"<td>{row.failures}</td><td>{row.sim_errors}</td><td>{nominal}</td>"
                     f"<td>{_fmt(row.pi_entropy)}</td><td>{_fmt(row.p_fail_entropy)}</td>"
                     f"<td>{_fmt(row.mean_severity, '.2f')}</td><td>{e(worst)}</td>"
                     f"<td><code>{e(str(row.sha256 or '–')[:16])}</code></td></tr>")
    parts.append("</table>")
    return parts


def _figures_section(figures, out) -> list[str]:
    e = html.escape
    parts = ["<h2>Figures</h2>"]
    for fig in figures:
        parts.append(f'<div class="fig"><h3>{e(fig.title)}</h3>{_img(out, fig.png, fig.title)}'
                     f'<div class="muted"><a href="{fig.png}">PNG</a> · <a href="{fig.svg}">SVG</a></div></div>')
    return parts


def _gallery_section(items, out) -> list[str]:
    if not items:
        return []
    e = html.escape
    parts = ["<h2>Failure gallery</h2><p class='muted'>The first failing episode of each top failure mode, "
             "replayed from its seed for this report: the perturbed scene, then frames from start to end.</p>"]
    for it in items:
        check = ("replay reproduced the recorded failure" if it.reproduced else
                 f"replay did NOT reproduce the record (replay: success={it.replay_success}, {it.replay_steps} steps)")
        parts.append(f"""<div class="fig"><h3>{e(it.run)}: {e(it.label)} (<code>{e(it.mode)}</code>),
P(fail) {_fmt(it.p_fail, '.2f')} over {counted(it.trials, 'trial')}</h3>
<p>episode {it.episode_id}, seed {it.seed}, perturbations {e(', '.join(it.perturbations))}, failed after
{it.steps} steps; {e(check)}. Replay: <code>{e(it.command)}</code></p>
<div style="display:flex;gap:8px;align-items:flex-start"><div style="flex:0 0 22%">{_img(out, it.scene, 'perturbed scene')}</div>
<div style="flex:1">{_img(out, it.strip, 'frames of the failing rollout')}</div></div></div>""")
    return parts


def _tables_section(runs, perturbations) -> list[str]:
    e = html.escape
    parts = ["<h2>Failure-mode tables</h2><p class='muted'>status and rank rest on the anytime-valid bounds "
             "(simultaneous over every mode, valid under adaptive sampling); the 95% Wilson interval describes each "
             "mode alone. Untried modes show no rate.</p>"]
    for r in runs:
        readout = any(m.pi_p_fail is not None for m in r.result.table.modes)
        parts.append(f"<h3>{e(r.label)}</h3>")
        parts.append(f"<p>{e(verdict_text(r.result.table))}</p>")
        parts.append("<table><tr><th>perturbation</th><th>factor</th><th>status</th><th>rank</th><th>P(fail)</th>"
                     "<th>95% Wilson</th><th>anytime-valid</th><th>trials</th><th>failures</th><th>sim errors</th>"
                     "<th>severity</th><th>π(a|o)</th>" + ("<th>P(fail) from π</th>" if readout else "") + "</tr>")
        for m in r.result.table.modes:
            if m.name != NOMINAL and m.name not in perturbations:
                continue
            tried = m.trials > 0
            anytime = f"[{m.cs_low:.2f}, {m.cs_high:.2f}]" if tried and m.name != NOMINAL else "–"
            wilson = f"[{m.ci_low:.2f}, {m.ci_high:.2f}]" if tried else "–"
            parts.append(f"<tr><td>{e(m.name)}</td><td>{e(m.factor)}</td><td>{e(m.status)}</td>"
                         f"<td>{m.rank or ''}</td><td>{_fmt(m.p_fail if tried else None)}</td>"
                         f"<td>{wilson}</td><td>{anytime}</td>"
                         f"<td>{m.trials}</td><td>{m.failures}</td><td>{m.sim_errors}</td>"
                         f"<td>{_fmt(m.severity if tried else None, '.2f')}</td>"
                         f"<td>{_fmt(m.pi)}</td>" + (f"<td>{_fmt(m.pi_p_fail)}</td>" if readout else "") + "</tr>")
        parts.append("</table>")
        if r.result.table.composites:
            parts.append("<p>Composite failure modes (perturbations applied together):</p><table><tr><th>perturbations</th>"
                         "<th>P(fail)</th><th>95% Wilson</th><th>trials</th><th>failures</th><th>sim errors</th></tr>")
            for m in r.result.table.composites:
                parts.append(f"<tr><td>{e(m.name)}</td><td>{_fmt(m.p_fail if m.trials else None)}</td>"
                             f"<td>[{m.ci_low:.2f}, {m.ci_high:.2f}]</td><td>{m.trials}</td><td>{m.failures}</td>"
                             f"<td>{m.sim_errors}</td></tr>")
            parts.append("</table>")
    return parts


def _metadata_section(runs) -> list[str]:
    e = html.escape
    parts = ["<h2>Run metadata</h2>"]
    for r in runs:
        c, p = r.config, r.record.policy
        rows = {"run folder": str(r.folder), "policy": p.spec, "policy name (as run)": p.name,
                "policy source": ("EXTERNAL: " if p.external else "") + p.source,
                "policy version": p.version, "checkpoint": p.path,
                "checkpoint sha256": p.sha256, "algorithm": p.algo, "task": c.task,
                "searcher": c.searcher, "budget": c.budget, "nominal episodes": c.nominal_episodes,
                "seed": c.seed, "horizon": c.episode_horizon, "workers": c.num_workers,
                "catalog": c.catalog or "default", "config hash": r.record.config_hash,
                "started": r.record.started, "finished": r.record.finished,
                **({"resumed": "; ".join(map(str, r.record.resumed))} if r.record.resumed else {}),
                **({"extends": f"{r.record.extends.run} ({r.record.extends.episodes} episodes, finished "
                               f"{r.record.extends.finished})"} if r.record.extends else {}),
                "search seconds": r.result.search_seconds,
                **{f"version: {k}": v for k, v in r.record.versions.items()}}
        parts.append(f"<h3>{e(r.label)}</h3><table>" + "".join(
            f"<tr><td>{e(k)}</td><td style='text-align:left'><code>{e(str(v))}</code></td></tr>" for k, v in rows.items())
            + "</table>")
    return parts


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]
