"""`plot` and `show --format latency` on a small results file (tests/fixtures: a real
2-rank llama-tiering run with hand-made latency fields), on the same file with the
fields an older emu did not write removed, and without matplotlib. No MPI; the
commands run in this process (drawing is the slow part), except without matplotlib."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from emu.cli import main
from emu.report.plot import plot_all, pyplot, seed_problem

FIXTURE = ROOT / "tests" / "fixtures" / "results-llama-small.json"
NEW_FIELDS = ("timeline", "shootdown_latency_ns", "shootdown_latency_cdf", "wait_share")


def _emu(capsys, *args) -> tuple[int, str, str]:
    """Run the command line in this process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        status = 0
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def _doc() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def old_file(tmp_path):
    """The fixture as the previous version of emu wrote it: without the new fields."""
    doc = _doc()
    for run in doc["runs"]:
        for field in NEW_FIELDS:
            del run[field]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    return path


def test_every_plot_is_drawn_from_the_json_unchanged(tmp_path):
    doc = _doc()
    drawn = plot_all(doc, str(tmp_path), ["tlb", "cdf", "timeline", "seed"])
    for path, _ in drawn.values():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    runs = {r["policy"]: r for r in doc["runs"]}
    assert drawn["tlb"][1] == {p: r["per_cpu"]["tlb_shootdowns"] for p, r in runs.items()}
    assert drawn["cdf"][1] == {p: (r["shootdown_latency_cdf"]["ns"], r["shootdown_latency_cdf"]["p"])
                               for p, r in runs.items()}
    for policy, series in drawn["timeline"][1].items():
        tl = runs[policy]["timeline"]
        assert series["t_ns"] == tl["t_ns"] and series["ipis"] == tl["ipis"]
        assert series["luf_pending"] == tl["luf_pending"]
        assert [list(p) for p in zip(*series["free_pages"], strict=True)] == tl["free_pages"]
    seed = dict((name, ours) for name, _, ours in drawn["seed"][1])
    v, lr = runs["vanilla"], runs["luf"]
    tlb = 100 * (sum(lr["per_cpu"]["tlb_shootdowns"]) / sum(v["per_cpu"]["tlb_shootdowns"]) - 1)
    assert seed["TLB shootdowns/CPU"] == pytest.approx(tlb)
    assert seed["runtime per run"] == pytest.approx(100 * (lr["runtime_ns"] / v["runtime_ns"] - 1))


def test_plot_command_writes_the_pngs_asked_for(tmp_path, capsys):
    status, out, err = _emu(capsys, "plot", FIXTURE, "--out", tmp_path / "png", "--plots", "tlb")
    png = tmp_path / "png" / "tlb.png"
    assert status == 0 and png.stat().st_size > 1000 and out == f"wrote {png}\n", err
    assert [p.name for p in (tmp_path / "png").iterdir()] == ["tlb.png"]
    status, _, err = _emu(capsys, "plot", FIXTURE, "--out", tmp_path, "--plots", "tlb,nope")
    assert status == 2 and "unknown plot 'nope'" in err


def test_older_file_names_the_missing_field(old_file, tmp_path, capsys):
    status, _, err = _emu(capsys, "plot", old_file, "--out", tmp_path / "png")
    assert status == 2 and err.count("\n") == 1
    assert "runs[0].shootdown_latency_cdf is missing" in err
    assert not (tmp_path / "png").exists()          # nothing drawn before the check
    status, _, err = _emu(capsys, "plot", old_file, "--out", tmp_path / "png", "--plots", "timeline")
    assert status == 2 and "runs[0].timeline is missing" in err
    status, _, err = _emu(capsys, "plot", old_file, "--out", tmp_path / "png", "--plots", "tlb")
    assert status == 0, err
    status, _, err = _emu(capsys, "show", old_file, "--format", "latency")
    assert status == 2 and err.count("\n") == 1
    assert "runs[0].shootdown_latency_ns is missing" in err
    for fmt in ("report", "interrupts", "perf", "vmstat", "csv"):
        status, out, err = _emu(capsys, "show", old_file, "--format", fmt)
        assert status == 0 and out, (fmt, err)


def test_seed_plot_needs_vanilla_and_luf_on_llama(tmp_path, capsys):
    doc = _doc()
    assert seed_problem(doc) == ""
    only_vanilla = dict(doc, runs=doc["runs"][:1])
    assert seed_problem(only_vanilla) == "needs a luf run"
    other = dict(doc, runs=[dict(r, scenario="reclaim") for r in doc["runs"]])
    assert seed_problem(other) == "needs a llama scenario with a vanilla run"
    path = tmp_path / "vanilla.json"
    path.write_text(json.dumps(only_vanilla))
    status, _, err = _emu(capsys, "plot", path, "--out", tmp_path / "png", "--plots", "seed")
    assert status == 2 and "needs a luf run" in err


def test_without_matplotlib_says_what_to_install(tmp_path):
    blocker = tmp_path / "block" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    res = subprocess.run([sys.executable, "-m", "emu", "plot", str(FIXTURE), "--out",
                          str(tmp_path / "png")], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env={"PYTHONPATH": str(blocker.parent), "PATH": ""})
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "pip install -e '.[plot]'" in res.stderr and "Traceback" not in res.stderr


def test_latency_table_lists_each_source_per_run(capsys):
    doc = _doc()
    status, out, err = _emu(capsys, "show", FIXTURE, "--format", "latency")
    assert status == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]
            if line.strip() and not line.startswith("time waiting")}
    for i, run in enumerate(doc["runs"]):
        for source, v in run["shootdown_latency_ns"].items():
            cells = rows[source][5 * i:5 * i + 4]
            assert cells == [f"{v[c]:,}" for c in ("count", "p50", "p99", "max")]
    assert "vanilla 1.00%" in out


def test_pyplot_uses_a_file_backend():
    assert pyplot().get_backend().lower() == "agg"
