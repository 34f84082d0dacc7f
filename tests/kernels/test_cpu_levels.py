"""The choice of the image's numba cache by CPU level (service/ops/cpu.py): from a host's flags
to the best baked level it runs, never one it cannot, and numba configured before import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.ops import cpu
from tests.support.paths import ROOT

BASELINE = {"fpu", "cmov", "cx8", "fxsr", "mmx", "sse", "sse2", "lm", "syscall"}
V2 = BASELINE | {"cx16", "lahf_lm", "popcnt", "pni", "ssse3", "sse4_1", "sse4_2"}
V3 = V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
V4 = V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
ALL = tuple(cpu.LEVELS)
EVERY_FLAG = sorted(cpu.required("x86-64-v4") | BASELINE | {"avx512vbmi", "sha_ni"})


@pytest.mark.parametrize(
    ("flags", "baked", "level"),
    [
        (set(), ALL, "generic"),
        (BASELINE, ALL, "generic"),
        (V2, ALL, "x86-64-v2"),
        (V2 - {"popcnt"}, ALL, "generic"),
        (V3, ALL, "x86-64-v3"),
        (V3 - {"abm"}, ALL, "x86-64-v2"),  # no LZCNT
        (V3 - {"xsave"}, ALL, "x86-64-v2"),  # AVX not enabled by the OS
        (V4, ALL, "x86-64-v4"),
        (V4 | {"avx512vbmi", "avx512_bf16"}, ALL, "x86-64-v4"),
        (V4 - {"avx512vl"}, ALL, "x86-64-v3"),
        # AVX-512 flags without AVX2 (a hypervisor masking some): levels are cumulative.
        (V2 | cpu.LEVELS["x86-64-v4"], ALL, "x86-64-v2"),
        (V4, ("generic", "x86-64-v3"), "x86-64-v3"),  # v4 not baked (a build host without it)
        (V4, ("generic",), "generic"),
        (V4, (), "generic"),
        (V2, ("generic", "x86-64-v3", "x86-64-v4"), "generic"),
    ],
)
def test_best_level(flags: set[str], baked: tuple[str, ...], level: str) -> None:
    assert cpu.best_level(flags, baked) == level


@given(st.sets(st.sampled_from(EVERY_FLAG)), st.sets(st.sampled_from(ALL)))
def test_never_a_level_the_flags_do_not_support(flags: set[str], baked: set[str]) -> None:
    chosen = cpu.best_level(flags, baked)
    assert cpu.required(chosen) <= flags
    assert chosen == "generic" or chosen in baked
    # and no better one was passed over
    better = ALL[ALL.index(chosen) + 1 :]
    assert not [lvl for lvl in better if lvl in baked and cpu.required(lvl) <= flags]


def test_levels_are_cumulative() -> None:
    assert cpu.required("generic") == set()
    assert cpu.required("x86-64-v2") == V2 - BASELINE
    assert cpu.required("x86-64-v3") == V3 - BASELINE
    assert cpu.required("x86-64-v4") == V4 - BASELINE


def test_cpu_flags_reads_the_first_processor(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx2\n\n"
        "processor\t: 1\nflags\t\t: fpu\n",
        encoding="utf-8",
    )
    assert cpu.cpu_flags(info) == {"fpu", "sse2", "avx2"}
    assert cpu.cpu_flags(tmp_path / "missing") == set()
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd\n", encoding="utf-8")
    assert cpu.cpu_flags(tmp_path / "arm") == set()


def bake(root: Path, *levels: str) -> None:
    for level in levels:
        # Where numba puts a kernel's index under NUMBA_CACHE_DIR: a directory per source one.
        kernels = root / level / "kernels_0123456789abcdef0123456789abcdef01234567"
        kernels.mkdir(parents=True)
        (kernels / "regression.mse-30.py312.nbi").write_bytes(b"index")
    # A directory without an index is not baked.
    (root / "x86-64-v4" / "kernels_0123456789abcdef0123456789abcdef01234567").mkdir(
        parents=True, exist_ok=True
    )


def test_configure_without_the_image_variable_sets_nothing() -> None:
    env = {"NUMBA_CACHE_DIR": "/somewhere"}
    assert cpu.configure(env, V4) is None
    assert env == {"NUMBA_CACHE_DIR": "/somewhere"}


def test_configure_picks_the_best_baked_level(tmp_path: Path) -> None:
    bake(tmp_path, "generic", "x86-64-v2", "x86-64-v3")
    env = {cpu.ROOT_ENV: str(tmp_path), "NUMBA_CACHE_DIR": "/var/cache/numba"}
    choice = cpu.configure(env, V4)
    assert choice is not None and choice.level == "x86-64-v3"
    assert choice.baked == ("generic", "x86-64-v2", "x86-64-v3")
    expected = {
        cpu.ROOT_ENV: str(tmp_path),
        "NUMBA_CPU_NAME": "x86-64-v3",
        "NUMBA_CPU_FEATURES": "",
        "NUMBA_CACHE_DIR": str(tmp_path / "x86-64-v3"),
    }
    assert env == expected
    # A worker process inheriting the variables makes the same choice.
    assert cpu.configure(env, V4) == choice
    assert env == expected
    # A host with fewer flags falls back.
    assert cpu.configure({cpu.ROOT_ENV: str(tmp_path)}, V2 | {"avx2"}).level == "x86-64-v2"
    assert cpu.configure({cpu.ROOT_ENV: str(tmp_path)}, BASELINE).level == "generic"
    assert cpu.configure({cpu.ROOT_ENV: str(tmp_path / "empty")}, V4).level == "generic"


def test_configure_honours_an_asked_level_the_host_runs(tmp_path: Path) -> None:
    bake(tmp_path, "generic", "x86-64-v3")
    env = {cpu.ROOT_ENV: str(tmp_path), "NUMBA_CPU_NAME": "x86-64-v2"}
    choice = cpu.configure(env, V4)
    assert choice.level == "x86-64-v2" and not choice.note  # (how the build bakes each level)
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "x86-64-v2")
    for asked in ("x86-64-v4", "znver4"):
        env = {cpu.ROOT_ENV: str(tmp_path), "NUMBA_CPU_NAME": asked}
        choice = cpu.configure(env, V3, ("haswell", ""))
        assert choice.level == env["NUMBA_CPU_NAME"] == "x86-64-v3"
        assert asked in choice.note


ZEN4 = "+sse2,+avx2,+fma,+avx512f,+avx512vl,+avx512vbmi2,+gfni,-amx-tile,-avx512fp16"


def bake_micro(root: Path, name: str, features: str) -> None:
    bake(root, name)
    (root / name / cpu.FEATURES_FILE).write_text(features + "\n")


@pytest.mark.parametrize(
    ("host", "level"),
    [
        (("znver4", ZEN4), "znver4"),
        (("znver4", ZEN4 + ",+avx512bf16"), "znver4"),  # more features than the build machine
        (("znver4", ZEN4.replace("+gfni", "-gfni")), "x86-64-v4"),  # a VM hiding one
        (("skylake-avx512", ZEN4), "x86-64-v4"),  # another micro-architecture
        (("", ""), "x86-64-v4"),
    ],
)
def test_a_cache_for_the_hosts_micro_architecture_wins_when_safe(
    tmp_path: Path, host: tuple[str, str], level: str
) -> None:
    bake(tmp_path, *ALL)
    bake_micro(tmp_path, "znver4", ZEN4)
    env = {cpu.ROOT_ENV: str(tmp_path)}
    choice = cpu.configure(env, V4, host)
    assert choice.level == env["NUMBA_CPU_NAME"] == level
    # The feature string the cache was compiled with (its key), not this host's.
    assert env["NUMBA_CPU_FEATURES"] == (ZEN4 if level == "znver4" else "")
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / level)
    assert cpu.configure(env, V4, host) == choice  # a worker process agrees


def test_a_micro_architecture_without_its_features_file_is_not_baked(tmp_path: Path) -> None:
    """The file is written after the warm-up succeeded: without it the cache may be partial."""
    bake(tmp_path, "generic", "znver4")
    assert cpu.configure({cpu.ROOT_ENV: str(tmp_path)}, V4, ("znver4", ZEN4)).level == "generic"


def test_asked_micro_architecture_only_when_it_is_this_machines(tmp_path: Path) -> None:
    bake(tmp_path, "generic")
    env = {cpu.ROOT_ENV: str(tmp_path), "NUMBA_CPU_NAME": "znver4"}
    assert cpu.configure(env, V4, ("znver4", ZEN4)).level == "znver4"  # how the build bakes it
    assert env["NUMBA_CPU_FEATURES"] == ZEN4  # as numba compiles for this machine by default
    env = {cpu.ROOT_ENV: str(tmp_path), "NUMBA_CPU_NAME": "znver4"}
    choice = cpu.configure(env, V4, ("skylake-avx512", ZEN4))
    assert choice.level == "generic" and "znver4" in choice.note


def test_record_bake_notes_the_feature_string_of_a_micro_architecture(tmp_path: Path) -> None:
    for name, features in (("znver4", ZEN4), ("x86-64-v3", "")):
        (tmp_path / name).mkdir()
        env = {
            cpu.ROOT_ENV: str(tmp_path),
            "NUMBA_CPU_NAME": name,
            "NUMBA_CPU_FEATURES": features,
            "NUMBA_CACHE_DIR": str(tmp_path / name),
        }
        cpu.record_bake(env)
    assert (tmp_path / "znver4" / cpu.FEATURES_FILE).read_text() == ZEN4 + "\n"
    assert not (tmp_path / "x86-64-v3" / cpu.FEATURES_FILE).exists()  # levels need none
    env = {"NUMBA_CPU_NAME": "znver4", "NUMBA_CPU_FEATURES": ZEN4}
    cpu.record_bake({**env, "NUMBA_CACHE_DIR": str(tmp_path / "other")})
    assert not (tmp_path / "other").exists()  # not an image


def test_llvm_host_is_what_numba_compiles_for_by_default() -> None:
    from numba.core import codegen

    name, features = cpu.llvm_host()
    assert name == codegen.ll.get_host_cpu_name()
    assert features == codegen.get_host_cpu_features()
    assert "sse2" in cpu.plus(features)


def test_cli_prints_the_levels_this_host_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(V3))
    assert cpu.main(list(ALL)) == 0
    out, err = capsys.readouterr()
    assert out == "generic x86-64-v2 x86-64-v3\n"
    assert err.startswith("x86-64-v4: skipped, this CPU lacks avx512bw avx512cd")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset())
    assert cpu.main(list(ALL)) == 0
    assert capsys.readouterr().out == "generic\n"
    monkeypatch.setattr(cpu, "llvm_host", lambda: ("znver4", ZEN4))
    assert cpu.main(["generic", "host"]) == 0
    assert capsys.readouterr().out == "generic znver4\n"
    monkeypatch.setattr(cpu, "llvm_host", lambda: ("x86-64", ""))  # no better name
    assert cpu.main(["generic", "host"]) == 0
    assert capsys.readouterr().out == "generic\n"
    assert cpu.main(["generic", "skylake"]) == 2
    assert cpu.main([]) == 2
    assert capsys.readouterr().out == ""


def test_importing_the_service_configures_numba_before_it_loads(tmp_path: Path) -> None:
    """In a fresh interpreter, as the image runs: ``import service`` chooses the level, and
    numba (imported after it, by the kernels) compiles for it and caches into its directory."""
    bake(tmp_path, *ALL)
    expected = cpu.best_level(cpu.cpu_flags(), ALL)
    code = (
        "import json, service.kernels.regression, numba.core.config as c, service.ops.cpu as u;"
        "print(json.dumps([c.CPU_NAME, c.CPU_FEATURES, c.CACHE_DIR, u.CHOSEN.level]))"
    )
    env = {"PATH": "/usr/bin:/bin", cpu.ROOT_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    name, features, cache_dir, chosen = json.loads(result.stdout)
    assert [name, features, cache_dir, chosen] == [
        expected,
        "",
        str(tmp_path / expected),
        expected,
    ]
