"""The end-to-end benchmark's printed table and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COMPONENT_ORDER = ("bridge", "worker", "erasure", "web", "raw-forward", "raw-store",
                   "mosquitto", "kafka", "postgres", "prometheus", "simulator")  # fmt: skip


STORE_COLORS = ("tab:blue", "tab:orange")


def _series(result: dict[str, Any], store: str, phase: str) -> list[dict[str, Any]]:
    return [s for s in result["steps"] if s["store"] == store and s["phase"] == phase]


def print_table(result: dict[str, Any]) -> None:
    print(result["machine"])
    print(result["events"])
    print(f"{'store':8} {'phase':8} {'offered':>8} {'publ/s':>8} {'stored/s':>8} {'p50':>6}"
          f" {'p95':>6} {'p99':>6} {'max':>7}  CPU s per 1k events (top 4)")  # fmt: skip
    for s in result["steps"]:
        lat = s["latency_ms"]
        top = sorted(s["cpu_s_per_1k_events"].items(), key=lambda kv: -kv[1])[:4]
        cpu = " ".join(f"{n}={v:.3f}" for n, v in top)
        print(
            f"{s['store']:8} {s['phase']:8} {s['offered']:>8,.0f} {s['published_rate']:>8,.0f}"
            f" {s['stored_rate']:>8,.0f} {lat['p50']:>6.0f} {lat['p95']:>6.0f}"
            f" {lat['p99']:>6.0f} {lat['max']:>7.0f}  {cpu}"
        )
    for store, v in result["summary"].items():
        ratio = "n/a" if v["ratio"] is None else f"{v['ratio']:.2f}x"
        print(
            f"{store}: pipeline saturation {v['pipeline_saturation']:,.0f}/s,"
            f" raw {v['raw_saturation']:,.0f}/s, ratio {ratio};"
            f" soak rate (half) {v['soak_rate']:,.0f}/s"
        )
        up = sorted(t for t, h in v.get("prometheus_targets", {}).items() if h == "up")
        for st in (s for s in result["steps"] if s["store"] == store and s["stages"]):
            stages = ", ".join(f"{k} {v:.1f}" for k, v in st["stages"].items())
            print(f"{store}: at {st['offered']:,.0f}/s {stages}")
        print(f"{store}: Prometheus scraped {len(up)} targets up: {', '.join(up)}")
        d = v.get("dashboards", {})
        print(f"{store}: {d.get('open', 0)} live dashboards open, {d.get('sse_frames', 0)} frames")
    print(result["load_end"])


def plot_all(result: dict[str, Any], prefix: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return [_rates(result, prefix), _latency(result, prefix), _cpu(result, prefix)]


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _rates(result: dict[str, Any], prefix: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    top = 0.0
    for store, color in zip(result["summary"], STORE_COLORS, strict=False):
        for phase, style in (("pipeline", "-o"), ("raw", "--s")):
            ss = _series(result, store, phase)
            xs = [s["offered"] for s in ss]
            top = max([top, *xs])
            ys = [s["stored_rate"] for s in ss]
            ax.plot(xs, ys, style, color=color, label=f"{phase}, {store}")
    ax.plot([0, top], [0, top], ":", color="grey", label="offered")
    ax.set(xlabel="offered events/s", ylabel="stored events/s",
           title="MQTT publish → stored row: stored vs offered rate")  # fmt: skip
    ax.legend()
    return _save(fig, Path(f"{prefix}_rate.png"))


def _latency(result: dict[str, Any], prefix: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for store, color in zip(result["summary"], STORE_COLORS, strict=False):
        for phase, dash in (("pipeline", "-"), ("raw", "--")):
            ss = _series(result, store, phase)
            xs = [s["offered"] for s in ss]
            for q, marker in (("p50", "o"), ("p99", "^")):
                ys = [s["latency_ms"][q] for s in ss]
                ax.plot(xs, ys, dash + marker, color=color, label=f"{q} {phase}, {store}")
    ax.axhline(250, color="red", lw=0.8, label="goal p99 250 ms")
    ax.set_yscale("log")
    ax.set(xlabel="offered events/s", ylabel="publish → stored (ms)",
           title="latency percentiles vs offered rate")  # fmt: skip
    ax.legend(fontsize=7)
    return _save(fig, Path(f"{prefix}_latency.png"))


def _cpu(result: dict[str, Any], prefix: Path) -> Path:
    import matplotlib.pyplot as plt

    stores = list(result["summary"])
    fig, axes = plt.subplots(1, len(stores), figsize=(6 * len(stores), 4), squeeze=False)
    for ax, store in zip(axes[0], stores, strict=True):
        ss = _series(result, store, "pipeline")
        labels = [f"{s['offered'] / 1000:g}k" for s in ss]
        names = [n for n in COMPONENT_ORDER if any(n in s["cpu_s"] for s in ss)]
        bottom = [0.0] * len(ss)
        for n in names:
            share = [s["cpu_s"].get(n, 0.0) / s["seconds"] * 100 for s in ss]
            ax.bar(labels, share, bottom=bottom, label=n)
            bottom = [b + v for b, v in zip(bottom, share, strict=True)]
        ax.axhline(200, color="grey", ls=":", lw=0.8)
        ax.set(xlabel="offered events/s", ylabel="% of one core",
               title=f"CPU per process, pipeline, {store}")  # fmt: skip
        ax.legend(fontsize=7, loc="upper left")
    return _save(fig, Path(f"{prefix}_cpu.png"))
