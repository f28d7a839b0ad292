"""The processor benchmark's pure parts: ``--kafka-nodes`` and the other options it
parses, and the table comparing each Kafka cluster size with the first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from processor_report import (  # noqa: E402
    MAX_NODES,
    Drain,
    Live,
    SizeRun,
    nodes_label,
    parse_args,
    ratio,
    table_lines,
)

MACHINE = "machine: 2 cores (test cpu), 8 GiB, Python 3.11, openjdk 21, load avg 1.00 1.00 1.00"
SIZE = "events (JSON GateEvent): 300 B mean (280-320 B, 50,000 sampled)"


def test_the_defaults_run_one_single_node_as_before() -> None:
    args = parse_args([])
    assert args.kafka_nodes == [1]
    assert args.stores == ["sqlite", "postgres"]
    assert args.kafka_auth == "both"


def test_kafka_nodes_is_a_comma_list_run_in_the_order_given() -> None:
    assert parse_args(["--kafka-nodes", "1,3"]).kafka_nodes == [1, 3]
    assert parse_args(["--kafka-nodes", "3,1"]).kafka_nodes == [3, 1]
    assert parse_args(["--kafka-nodes", " 3 "]).kafka_nodes == [3]
    args = parse_args(["--events", "50000", "--stores", "sqlite", "--kafka-nodes", "1,3",
                       "--latency-rate", "0", "--kafka-auth", "on"])  # fmt: skip
    assert (args.events, args.stores, args.latency_rate) == (50000, ["sqlite"], 0)
    assert (args.kafka_nodes, args.kafka_auth) == ([1, 3], "on")


@pytest.mark.parametrize(
    "argv",
    [
        ["--kafka-nodes", "1,x"],
        ["--kafka-nodes", "0"],
        ["--kafka-nodes", "-1"],
        ["--kafka-nodes", str(MAX_NODES + 1)],
        ["--kafka-nodes", "1,,3"],
        ["--kafka-nodes", ""],
        ["--kafka-nodes", "1,3,1"],
        ["--kafka-nodes", "1.5"],
        ["--stores", "sqlite,mysql"],
        ["--stores", ","],
        ["--events", "-1"],
        ["--events", "0", "--latency-rate", "0"],
        ["--latency-s", "0"],
    ],
)
def test_a_wrong_option_is_a_usage_error_naming_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error:" in err.splitlines()[-1]


@given(st.lists(st.integers(1, MAX_NODES), min_size=1, max_size=MAX_NODES, unique=True))
def test_any_list_of_distinct_sizes_parses_back_to_itself(sizes: list[int]) -> None:
    assert parse_args(["--kafka-nodes", ",".join(map(str, sizes))]).kafka_nodes == sizes


def test_ratio_is_against_the_base_and_a_dash_when_it_cannot_be() -> None:
    assert ratio(43_767, 70_581) == "0.62x"
    assert ratio(100, 100) == "1.00x"
    assert ratio(1, 0) == "-"
    assert ratio(float("nan"), 10) == "-"
    assert ratio(10, float("nan")) == "-"
    assert ratio(0, 10) == "-"  # 0: not measured


def test_a_size_is_labelled_with_the_replication_the_stack_gives_it() -> None:
    assert nodes_label(1) == "1 node (RF 1, min ISR 1)"
    assert nodes_label(3) == "3 nodes (RF 3, min ISR 2)"


def two_sizes(live: bool) -> list[SizeRun]:
    def lv(p99: float) -> Live | None:
        return Live(200, 6000, 6000, 40, p99) if live else None

    return [
        SizeRun(1, [Drain("sqlite-secure-delete-off", 20_000, 8_000),
                    Drain("sqlite-secure-delete-on", 18_000, 7_000)], lv(90)),
        SizeRun(3, [Drain("sqlite-secure-delete-off", 15_000, 6_000),
                    Drain("sqlite-secure-delete-on", 18_000, 3_500)], lv(1200)),
    ]  # fmt: skip


def test_the_table_states_machine_event_size_and_load_at_start_and_end() -> None:
    lines = table_lines(two_sizes(False), MACHINE, SIZE, "load avg 2.00 1.0 0.5",
                        "load avg 9.00 3.0 1.0", auth=True)  # fmt: skip
    assert lines[0].endswith("Kafka auth on")
    assert MACHINE in lines and SIZE in lines
    assert "start: load avg 2.00 1.0 0.5; end: load avg 9.00 3.0 1.0" in lines
    assert not any("p99" in line for line in lines)  # no live phase was run


def test_each_worker_is_compared_with_the_same_worker_on_the_first_size() -> None:
    lines = table_lines(two_sizes(True), MACHINE, SIZE, "s", "e", auth=False)
    rows = [line for line in lines if line.startswith("| 3 nodes") and "sqlite" in line]
    assert rows == [
        "| 3 nodes (RF 3, min ISR 2) | sqlite-secure-delete-off | 15,000 | 0.75x | 6,000 | 0.75x |",
        "| 3 nodes (RF 3, min ISR 2) | sqlite-secure-delete-on | 18,000 | 1.00x | 3,500 | 0.50x |",
    ]
    first = [line for line in lines if line.startswith("| 1 node ") and "sqlite" in line]
    assert all(line.count("1.00x") == 2 for line in first)
    assert "| Kafka | worker | events/s | vs 1 node (RF 1, min ISR 1) |" in "\n".join(lines)


def test_the_live_phase_gives_p50_and_p99_per_size() -> None:
    lines = table_lines(two_sizes(True), MACHINE, SIZE, "s", "e", auth=False)
    assert "| 1 node (RF 1, min ISR 1) | 200 | 6,000/6,000 | 40 | 90 |" in lines
    assert "| 3 nodes (RF 3, min ISR 2) | 200 | 6,000/6,000 | 40 | 1,200 |" in lines


def test_a_worker_missing_on_the_first_size_has_no_ratio() -> None:
    runs = [SizeRun(3, [Drain("postgres", 9_000, 4_000)]), SizeRun(1, [Drain("sqlite", 1, 1)])]
    lines = table_lines(runs, MACHINE, SIZE, "s", "e", auth=False)
    assert "| 1 node (RF 1, min ISR 1) | sqlite | 1 | - | 1 | - |" in lines
    assert "| 3 nodes (RF 3, min ISR 2) | postgres | 9,000 | 1.00x | 4,000 | 1.00x |" in lines


def test_a_live_only_run_has_no_drain_table() -> None:
    live_only = [SizeRun(1, [], Live(200, 10, 10, 5, 9))]
    lines = table_lines(live_only, MACHINE, SIZE, "s", "e", auth=False)
    assert not any("events per CPU-s" in line for line in lines)
    assert "| 1 node (RF 1, min ISR 1) | 200 | 10/10 | 5 | 9 |" in lines


def test_a_drain_too_short_to_time_shows_a_dash_not_nan_or_zero() -> None:
    runs = [SizeRun(1, [Drain("sqlite", float("nan"), 0.0)]), SizeRun(3, [Drain("sqlite", 9, 9)])]
    lines = table_lines(runs, MACHINE, SIZE, "s", "e", auth=False)
    assert "| 1 node (RF 1, min ISR 1) | sqlite | - | - | - | - |" in lines
    assert "| 3 nodes (RF 3, min ISR 2) | sqlite | 9 | - | 9 | - |" in lines
    assert not any("nan" in line for line in lines)
