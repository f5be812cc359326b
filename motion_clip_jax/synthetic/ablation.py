"""The paper's ablation (Fig. 3a) at small scale: variants x seeds on the synthetic motion world.

  python -m motion_clip_jax.synthetic.ablation [--seeds 0,1,2] [--variants clip,baseline,...]
      [--random_seeds 0] [--root workdirs/ablation] [--epochs N] [--docs docs/]
      [--config configs/demo.py] [--clip_checkpoint PATH] [--set field=value ...]

Each run is the real trainer (`trainer.train_and_evaluate`) on the demo config of its variant, in
<root>/<backbone>/<variant>/seed<s>; a run whose workdir holds eval_results.json is skipped, an
unfinished one resumes from its checkpoint. Every "pretrained" run freezes the SAME small CLIP (the
demo's, pretrained on static synthetic frames with its own seed, or --clip_checkpoint); only the
training seed (trainable init, data order) changes. "random" runs freeze a random-weight CLIP drawn
from the run's seed. Writes <docs>/ablation.md (mean +- sample std over seeds) and
<docs>/ablation.png. Text below the NOTES_MARKER line of an existing ablation.md is kept.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections
import numpy as np

from motion_clip_jax import cli_errors

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VARIANTS = ("clip", "baseline", "baseline_mcb", "mmb", "mmb_map", "full")
VARIANT_LABELS = {
    "clip": "CLIP (mean pooling, hand-crafted prompt)",
    "baseline": "Baseline (spatial transformer)",
    "baseline_mcb": "Baseline + MCB",
    "mmb": "+ MMB",
    "mmb_map": "+ MMB + MAP",
    "full": "+ MMB + MAP + MCB (full)",
}
BACKBONES = ("pretrained", "random")
# A pair whose class names start with one of these is "hard" and reported on its own: telling
# clockwise from anticlockwise needs the absolute angle and its change together, which the tiny
# CLIP's frame feature barely holds (tilt probe, docs/pretrain_clip.md).
HARD_PAIR_PREFIXES = ("rotating",)
NOTES_MARKER = "<!-- notes below this line are kept when the ablation script rewrites the file -->"
RUN_RECORD = "ablation_run.json"  # seconds and load average of a run, beside eval_results.json
# Applied before --set. On the synthetic world the 4 x 3 multi-view test is the single view 12
# times (8-frame clips sampled at T = 8: one frame per segment; 32 px frames cropped to 32: the 3
# crops coincide); the demo and a probe gave identical top-1 for both views in every variant.
DEFAULT_OVERRIDES = {"eval.multiview": False, "eval.confusion_png": False}


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of the ablation."""

    variant: str
    backbone: str  # 'pretrained' | 'random'
    seed: int
    workdir: str


def load_config_module(path: str) -> Callable[..., ml_collections.ConfigDict]:
    """`get_config` of a config file (relative paths: from the cwd, else from the repo root)."""
    if not os.path.exists(path):
        path = os.path.join(REPO_ROOT, path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file {path} not found")
    spec = importlib.util.spec_from_file_location("ablation_base_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ValueError(f"config file {path} line {e.lineno}: {e.msg}") from e
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"config file {path} defines no get_config()")
    return module.get_config


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """['train.num_steps=3', 'data.dataset_dir=/x'] -> {'train.num_steps': 3, ...}.

    Values are Python literals where they parse (3, 0.5, False, 'a'), else plain strings.
    """
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected field=value")
        key, text = item.split("=", 1)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        out[key.strip()] = value
    return out


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> None:
    """Sets dotted fields in place; an unknown field is an error naming it."""
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for name in parents:
            if name not in node:
                raise ValueError(f"--set {key}: config has no field {name!r}")
            node = node[name]
        if leaf not in node:
            raise ValueError(f"--set {key}: config has no field {leaf!r}")
        node[leaf] = value


def run_config(
    get_config: Callable[..., ml_collections.ConfigDict],
    run: Run,
    clip_checkpoint: str,
    epochs: float | None,
    overrides: dict[str, Any],
) -> ml_collections.ConfigDict:
    """The config of one run: the base config of its variant, overrides, seed, backbone."""
    config = get_config(run.variant)
    apply_overrides(config, overrides)
    config.seed = run.seed
    if epochs:
        config.train.num_epochs = float(epochs)
    config.clip_source = ""
    if run.backbone == "pretrained":
        config.clip_checkpoint = clip_checkpoint
    else:
        config.clip_checkpoint = ""
        config.allow_random_clip = True
    return config


def resolve_backbone(
    get_config: Callable[..., ml_collections.ConfigDict], overrides: dict[str, Any]
) -> str:
    """Path of the demo's pretrained tiny CLIP (pretrains it once if not cached), the one every
    pretrained run freezes (its seed is clip_source_settings.seed, not the runs' seeds)."""
    from motion_clip_jax.train import trainer

    config = get_config("full")
    apply_overrides(config, overrides)
    if config.clip_checkpoint:
        return config.clip_checkpoint
    if not config.clip_source:
        raise ValueError("the base config names no clip_checkpoint and no clip_source")
    return trainer.load_frozen_clip(config)[2]


def plan_runs(
    root: str, variants: Sequence[str], seeds: Sequence[int], random_seeds: Sequence[int]
) -> list[Run]:
    """Runs in rounds: round i holds the i-th pretrained seed and the i-th random seed of every
    variant, so a run cut short still leaves whole seeds, random rows included."""
    runs = []
    for i in range(max(len(seeds), len(random_seeds))):
        for backbone, backbone_seeds in (("pretrained", seeds), ("random", random_seeds)):
            if i >= len(backbone_seeds):
                continue
            for variant in variants:
                seed = backbone_seeds[i]
                workdir = os.path.join(root, backbone, variant, f"seed{seed}")
                runs.append(Run(variant, backbone, seed, workdir))
    return runs


def is_finished(run: Run) -> bool:
    return os.path.exists(os.path.join(run.workdir, "eval_results.json"))


def execute(run: Run, config: ml_collections.ConfigDict) -> None:
    """Trains and evaluates one run with the real trainer; records its seconds and load."""
    from motion_clip_jax.train import trainer

    load_before = os.getloadavg()[0]
    start = time.time()
    trainer.train_and_evaluate(config, run.workdir)
    record = {
        "seconds": round(time.time() - start, 1),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    with open(os.path.join(run.workdir, RUN_RECORD), "w") as f:
        json.dump(record, f, indent=1)


# --- Summaries ----------------------------------------------------------------------------------


def pair_label(name_a: str, name_b: str) -> str:
    """'moving left', 'moving right' -> 'left / right' (leading words they share dropped)."""
    a, b = name_a.split(), name_b.split()
    while len(a) > 1 and len(b) > 1 and a[0] == b[0]:
        a, b = a[1:], b[1:]
    return f"{' '.join(a)} / {' '.join(b)}"


def is_hard_pair(name_a: str, name_b: str) -> bool:
    return any(n.startswith(HARD_PAIR_PREFIXES) for n in (name_a, name_b))


def run_metrics(workdir: str) -> dict[str, Any]:
    """One finished run -> {'top1', 'top1_multiview', 'pairs': {label: acc}, 'hard_pairs',
    'easy_mean', 'hard_mean', 'pair_mean', 'steps', 'seconds', 'steps_per_second'} (accuracies in
    [0, 1]; None where missing)."""
    results = cli_errors.read_json(os.path.join(workdir, "eval_results.json"))
    names = cli_errors.read_json(os.path.join(workdir, "run_info.json")).get("class_names", [])
    single = results.get("main/single_view")
    if single is None:
        raise ValueError(f"{workdir}/eval_results.json: no 'main/single_view' evaluation")
    pairs, easy, hard, hard_labels = {}, [], [], []
    for key, value in single.get("pair_accuracy", {}).items():
        if key == "mean":
            continue
        a, b = (names[int(i)] for i in key.split("-"))
        label = pair_label(a, b)
        pairs[label] = value
        (hard if is_hard_pair(a, b) else easy).append(value)
        if is_hard_pair(a, b):
            hard_labels.append(label)
    rates = []
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        rates = [r["steps_per_second"] for r in rows if r.get("kind") == "train"]
    seconds = None
    record = os.path.join(workdir, RUN_RECORD)
    if os.path.exists(record):
        with open(record) as f:
            seconds = json.load(f)["seconds"]
    multiview = results.get("main/multiview")
    return {
        "top1": single["top1"],
        "top1_multiview": multiview["top1"] if multiview else None,
        "pairs": pairs,
        "hard_pairs": hard_labels,
        "easy_mean": float(np.mean(easy)) if easy else None,
        "hard_mean": float(np.mean(hard)) if hard else None,
        "pair_mean": float(np.mean(easy + hard)) if pairs else None,
        "steps": results.get("step"),
        "seconds": seconds,
        # Training steps/s after the first log window (which holds the compile).
        "steps_per_second": float(np.mean(rates[1:] or rates)) if rates else None,
    }


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int] | None:
    """(mean, sample std (n - 1; 0 for one value), n) of the values that are not None."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    std = float(np.std(kept, ddof=1)) if len(kept) > 1 else 0.0
    return float(np.mean(kept)), std, len(kept)


def aggregate(per_run: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float, int] | None]:
    """run_metrics of the seeds of one variant -> {metric: (mean, std, n)}; pair metrics are keyed
    'pair:<label>'."""
    out = {}
    for key in ("top1", "top1_multiview", "easy_mean", "hard_mean", "pair_mean"):
        out[key] = mean_std([m[key] for m in per_run])
    labels = list(dict.fromkeys(label for m in per_run for label in m["pairs"]))
    for label in labels:
        out[f"pair:{label}"] = mean_std([m["pairs"].get(label) for m in per_run])
    return out


def pair_columns(metrics: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(easy pair labels, hard pair labels) in dataset order."""
    easy, hard = [], []
    for m in metrics:
        for label in m["pairs"]:
            if label not in easy and label not in hard:
                (hard if label in m["hard_pairs"] else easy).append(label)
    return easy, hard


def _cell(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return "-"
    mean, std, n = stat
    return f"{100 * mean:.1f}" if n == 1 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def summary_table(
    rows: Sequence[tuple[str, dict[str, Any]]], easy: Sequence[str], hard: Sequence[str]
) -> str:
    """Markdown table: one row per (variant, aggregate), accuracies in % as mean ± std."""
    multiview = any(agg["top1_multiview"] for _, agg in rows)
    header = (
        ["variant", "seeds", "top-1"]
        + (["top-1 (4x3 views)"] if multiview else [])
        + list(easy)
        + ["mean (these pairs)"]
        + [f"{h} (hard)" for h in hard]
        + ["mean (all pairs)"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for variant, agg in rows:
        n = agg["top1"][2] if agg["top1"] else 0
        cells = [VARIANT_LABELS.get(variant, variant), str(n), _cell(agg["top1"])]
        if multiview:
            cells.append(_cell(agg["top1_multiview"]))
        cells += [_cell(agg.get(f"pair:{label}")) for label in easy]
        cells.append(_cell(agg["easy_mean"]))
        cells += [_cell(agg.get(f"pair:{label}")) for label in hard]
        cells.append(_cell(agg["pair_mean"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_run_table(entries: Sequence[tuple[Run, dict[str, Any]]], labels: Sequence[str]) -> str:
    header = ["backbone", "variant", "seed", "steps", "top-1", *labels, "steps/s", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run, m in entries:
        cells = [
            run.backbone,
            run.variant,
            str(run.seed),
            str(m["steps"]),
            f"{100 * m['top1']:.1f}",
        ]
        cells += [
            f"{100 * m['pairs'][label]:.1f}" if label in m["pairs"] else "-" for label in labels
        ]
        rate = m["steps_per_second"]
        cells.append("-" if rate is None else f"{rate:.1f}")
        cells.append("-" if m["seconds"] is None else f"{m['seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(groups: dict[str, list[tuple[str, dict[str, Any]]]], labels: list[str], path: str):
    """Grouped bars (mean, std error bars) of top-1 and each pair's accuracy, one panel per
    backbone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("top1", "top-1 (8-way)")] + [(f"pair:{label}", label) for label in labels]
    panels = [(name, rows) for name, rows in groups.items() if rows]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.6 * len(panels)), squeeze=False)
    width = 0.8 / len(metrics)
    for ax, (name, rows) in zip(axes[:, 0], panels):
        x = np.arange(len(rows))
        for i, (key, title) in enumerate(metrics):
            stats = [agg.get(key) for _, agg in rows]
            means = [100 * s[0] if s else 0.0 for s in stats]
            stds = [100 * s[1] if s else 0.0 for s in stats]
            ax.bar(x + (i - (len(metrics) - 1) / 2) * width, means, width, yerr=stds,
                   capsize=2, label=title)  # fmt: skip
        ax.axhline(50, color="grey", linestyle="--", linewidth=0.8)
        ax.axhline(100 / 8, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xticks(x, [VARIANT_LABELS.get(v, v).replace(" (", "\n(") for v, _ in rows],
                      fontsize=8)  # fmt: skip
        ax.set_ylim(0, 118)  # room for the legend above the 100% bars
        ax.set_ylabel("accuracy (%)")
        seeds = max((agg["top1"][2] for _, agg in rows if agg["top1"]), default=0)
        title = f"{name} frozen CLIP (mean ± std over {seeds} seed(s); "
        ax.set_title(title + "dashed: pair chance 50%, dotted: 8-way chance 12.5%)", fontsize=9)
    axes[0, 0].legend(fontsize=8, ncol=len(metrics), loc="upper left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _display_path(path: str) -> str:
    """Repo-relative where the file lies in the repo, else absolute."""
    path = os.path.abspath(path)
    inside = os.path.commonpath([path, REPO_ROOT]) == REPO_ROOT
    return os.path.relpath(path, REPO_ROOT) if inside else path


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import jax

    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, JAX {jax.__version__} on "
        f"{jax.devices()[0].platform}, Python {platform.python_version()}"
    )


def write_docs(
    runs: Sequence[Run],
    docs_dir: str,
    command: str,
    wall_seconds: float,
    load: tuple[float, float],
    clip_checkpoint: str,
    epochs_note: str,
) -> tuple[str, str]:
    """Writes <docs_dir>/ablation.md and ablation.png from the finished runs."""
    entries = [(run, run_metrics(run.workdir)) for run in runs if is_finished(run)]
    if not entries:
        raise ValueError("no finished run to summarise")
    easy, hard = pair_columns([m for _, m in entries])
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for backbone in BACKBONES:
        rows = []
        for variant in dict.fromkeys(r.variant for r, _ in entries):
            seeds = [m for r, m in entries if r.backbone == backbone and r.variant == variant]
            if seeds:
                rows.append((variant, aggregate(seeds)))
        groups[backbone] = rows
    md_path = os.path.join(docs_dir, "ablation.md")
    png_path = os.path.join(docs_dir, "ablation.png")
    plot(groups, easy + hard, png_path)
    run_seconds = sum(m["seconds"] or 0 for _, m in entries)
    parts = [
        "# Ablation on the synthetic motion world (paper Fig. 3a at small scale)",
        "",
        "Written by `python -m motion_clip_jax.synthetic.ablation` (do not edit above the notes "
        "marker: rerunning the script rewrites it).",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_line()}; load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end.",
        f"- Wall time of this invocation: {wall_seconds / 60:.1f} min (runs skipped as finished "
        f"cost nothing); sum of the runs' own times: {run_seconds / 60:.1f} min.",
        f"- Training: {epochs_note}",
        f"- Pretrained backbone (every 'pretrained' run): `{_display_path(clip_checkpoint)}`"
        if clip_checkpoint
        else "- Pretrained backbone: none",
        "- Accuracies in %, single view (centre frames) unless marked; mean ± sample standard "
        "deviation (n - 1) over the training seeds; a single number when there is one seed. "
        "Pair columns: within-pair accuracy (choose between the two classes of the video's pair, "
        "chance 50%); 8-way chance is 12.5%.",
        "",
        "## Pretrained frozen CLIP",
        "",
        summary_table(groups["pretrained"], easy, hard) if groups["pretrained"] else "(no runs)",
        "",
        "## Random-weight frozen CLIP (why the pretraining is needed)",
        "",
        summary_table(groups["random"], easy, hard) if groups["random"] else "(no runs)",
        "",
        f"![ablation bar chart]({os.path.basename(png_path)})",
        "",
        "## Every run",
        "",
        per_run_table(entries, easy + hard),
        "",
        NOTES_MARKER,
    ]
    notes = ""
    if os.path.exists(md_path):
        with open(md_path) as f:
            old = f.read()
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1]
    os.makedirs(docs_dir, exist_ok=True)
    with open(md_path, "w") as f:
        f.write("\n".join(parts) + (notes if notes else "\n"))
    return md_path, png_path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, pretrained backbone")
    parser.add_argument("--random_seeds", default="0", help="seeds of the random-backbone rows")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--root", default="workdirs/ablation")
    parser.add_argument("--epochs", type=float, default=None, help="default: the config's")
    parser.add_argument("--docs", default="docs")
    parser.add_argument("--config", default="configs/demo.py", help="get_config(variant) file")
    parser.add_argument("--clip_checkpoint", default="", help="default: the demo's tiny CLIP")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="config override for every run, e.g. train.log_every_steps=100",
    )
    args = parser.parse_args(argv)

    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; known: {list(VARIANTS)}")

    def to_ints(flag: str, text: str) -> list[int]:
        try:
            return [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            parser.error(f"{flag} {text!r}: expected comma-separated integers, e.g. 0,1,2")

    seeds, random_seeds = (
        to_ints("--seeds", args.seeds),
        to_ints("--random_seeds", args.random_seeds),
    )
    if not seeds and not random_seeds:
        parser.error("--seeds and --random_seeds are both empty: no run to do")
    if not variants:
        parser.error("--variants is empty")
    if args.epochs is not None and args.epochs <= 0:
        parser.error(f"--epochs must be > 0, got {args.epochs}")
    for flag, path in (("--root", args.root), ("--docs", args.docs)):
        if os.path.exists(path) and not os.path.isdir(path):
            parser.error(f"{flag} {path} is a file, not a folder")
    try:
        overrides = {**DEFAULT_OVERRIDES, **parse_overrides(args.set)}
    except ValueError as e:
        parser.error(str(e))
    if args.clip_checkpoint and not os.path.isfile(args.clip_checkpoint):
        parser.error(f"--clip_checkpoint {args.clip_checkpoint}: no such file")
    return cli_errors.run_main(_run, args, argv, variants, seeds, random_seeds, overrides)


def _run(
    args: argparse.Namespace,
    argv: list[str],
    variants: list[str],
    seeds: list[int],
    random_seeds: list[int],
    overrides: dict[str, Any],
) -> int:
    """main() past its flags: the runs, then the docs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")  # tf.data only: JAX owns any accelerator

    start, load_start = time.time(), os.getloadavg()[0]
    get_config = load_config_module(args.config)
    clip_checkpoint = args.clip_checkpoint or (
        resolve_backbone(get_config, overrides) if seeds else ""
    )
    runs = plan_runs(args.root, variants, seeds, random_seeds)
    for i, run in enumerate(runs):
        if is_finished(run):
            print(f"[{i + 1}/{len(runs)}] done: {run.workdir}", flush=True)
            continue
        print(f"[{i + 1}/{len(runs)}] {run.backbone} {run.variant} seed {run.seed}", flush=True)
        execute(run, run_config(get_config, run, clip_checkpoint, args.epochs, overrides))
    probe = run_config(get_config, runs[0], clip_checkpoint, args.epochs, overrides)
    epochs_note = (
        f"{probe.train.num_steps} steps per run (train.num_steps)"
        if probe.train.num_steps > 0
        else f"{probe.train.num_epochs:g} epochs per run"
        + (" (shortened with --epochs)" if args.epochs else " (the config's)")
    )
    command = "python -m motion_clip_jax.synthetic.ablation " + shlex.join(argv)
    md_path, png_path = write_docs(
        runs,
        args.docs,
        command.strip(),
        time.time() - start,
        (load_start, os.getloadavg()[0]),
        clip_checkpoint,
        epochs_note,
    )
    print(f"wrote {md_path} and {png_path}")
    with open(md_path) as f:
        print(f.read().split("## Every run")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
