"""The structure docs/ARCHITECTURE.md promises: data flows one way (checked on every import), ZeRO-3 is detected
in one module, and a method with its own flags is one class plus one registry entry: its flags show in
`train.py --help`, reach it typed, and are refused with another method."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ARCHITECTURE = REPO / "docs/ARCHITECTURE.md"


def allowed_imports() -> dict[str, set[str]]:
    """unit -> the units it may import, read from ARCHITECTURE.md's table. A unit is a sub-package or top-level
    module of llava_thanora, or eval/."""
    table = {}
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            table[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    return table


def _unit(path: Path) -> str:
    parts = path.relative_to(REPO).parts
    return "eval" if parts[0] == "eval" else parts[1].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    package = list(path.relative_to(REPO).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level] if node.level else []
            names = [".".join(base + ([node.module] if node.module else []))]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "llava_thanora" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] == "eval":
                found.add("eval")
    return found


def project_files() -> list[Path]:
    return sorted(p for p in [*REPO.glob("llava_thanora/**/*.py"), *REPO.glob("eval/**/*.py")]
                  if p.name != "__init__.py" or p.parent.name != "llava_thanora")


def test_data_flows_one_way():
    allowed, wrong = allowed_imports(), []
    units = {_unit(p) for p in project_files()}
    assert units == set(allowed), f"units without a row in ARCHITECTURE.md, or rows without code: {units ^ set(allowed)}"
    for path in project_files():
        unit = _unit(path)
        for other in _imported_units(path) - {unit}:
            if other not in allowed[unit]:
                wrong.append(f"{path.relative_to(REPO)} imports {other}")
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(wrong)
    assert allowed["thanora"] <= {"distributed", "residual"}  # model-agnostic: no data, model, methods or train


def test_zero3_is_detected_in_one_module():
    holders = [p.relative_to(REPO) for p in [*project_files(), *REPO.glob("scripts/**/*.py"), *REPO.glob("bench/*.py")]
               if re.search(r"""["']ds_id["']""", p.read_text())]
    assert holders == [Path("llava_thanora/distributed.py")]


def test_no_file_is_a_thousand_lines():
    long = [(str(p.relative_to(REPO)), n) for p in project_files() if (n := len(p.read_text().splitlines())) >= 1000]
    assert not long


# ------------------------------------------------------------------------------------------ a method's own flags
def probe_method():
    """A method written as a user would add one: its flags dataclass and the class, nothing else."""
    from llava_thanora.flags import documented
    from llava_thanora.methods.lora import LoRAMethod

    @documented
    class ProbeArguments:
        probe_strength: float = 0.5
        """How hard the probe pushes (a test flag)."""
        probe_mode: str = "soft"
        """soft or hard."""

        def __post_init__(self):
            if self.probe_mode not in ("soft", "hard"):
                raise ValueError(f"--probe_mode must be soft or hard, got {self.probe_mode!r}")

    class ProbeMethod(LoRAMethod):
        name, arguments = "probe", ProbeArguments
        seen = []

        def build(self, model, ctx):
            ProbeMethod.seen.append(self.args)
            return super().build(model, ctx)

    return ProbeMethod


def test_a_method_with_its_own_flags(tiny_model, color_data, tmp_path, capsys):
    from llava_thanora.cli import main, registered

    probe = probe_method()
    table = {**registered(), "probe": probe}
    with pytest.raises(SystemExit):
        main(["--help"], methods=table)
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--probe_strength PROBE_STRENGTH" in help_text and "How hard the probe pushes (a test flag)." in help_text
    assert "--thanora_cov_dtype {float32,float64}" in help_text and "probe" in help_text  # every method's flags

    data_path, images = color_data
    common = ["--model_name_or_path", tiny_model, "--data_path", data_path, "--image_folder", images,
              "--output_dir", str(tmp_path), "--max_steps", "1", "--lora_r", "4", "--lora_alpha", "8",
              "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]
    trainer = main([*common, "--method", "probe", "--probe_strength", "2.5"], methods=table)
    (args,) = probe.seen
    assert type(args).__name__ == "ProbeArguments" and (args.probe_strength, args.probe_mode) == (2.5, "soft")
    assert trainer.state.global_step == 1 and (tmp_path / "adapter_model.safetensors").is_file()

    with pytest.raises(ValueError, match="probe_mode must be soft or hard"):  # validated on creation
        main([*common, "--method", "probe", "--probe_mode", "medium"], methods=table)
    with pytest.raises(ValueError, match=r"--probe_strength: a flag of --method probe, which has no effect with "
                                         r"--method lora"):
        main([*common, "--method", "lora", "--probe-strength", "1"], methods=table)
    with pytest.raises(ValueError, match="--thanora_tau: a flag of --method thanora"):
        main([*common, "--method", "corda", "--thanora_tau", "0.2"])
    assert "probe" not in registered()  # nothing global was changed


def test_the_worked_example_of_architecture_md_trains(tiny_model, color_data, tmp_path, monkeypatch):
    """The "Adding a method" example, executed as the file it tells a user to write."""
    import types

    from llava_thanora.cli import main, registered

    code = re.search(r"```python\n(.*?)```", ARCHITECTURE.read_text(), re.S).group(1)
    module = types.ModuleType("llava_thanora.methods.scaled_lora")
    module.__package__ = "llava_thanora.methods"
    monkeypatch.setitem(sys.modules, module.__name__, module)  # where dataclasses look a class's module up
    exec(compile(code, "scaled_lora.py", "exec"), module.__dict__)
    table = {**registered(), "scaled_lora": module.ScaledLoRAMethod}
    data_path, images = color_data
    common = ["--model_name_or_path", tiny_model, "--data_path", data_path, "--image_folder", images,
              "--output_dir", str(tmp_path), "--max_steps", "1", "--lora_r", "4", "--lora_alpha", "8",
              "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true",
              "--method", "scaled_lora"]
    trainer = main([*common, "--scaled_lora_init_scale", "3"], methods=table)
    assert trainer.method.args.scaled_lora_init_scale == 3.0 and trainer.state.global_step == 1
    with pytest.raises(ValueError, match="scaled_lora_init_scale must be > 0"):
        main([*common, "--scaled_lora_init_scale", "0"], methods=table)


def test_thanora_flags_are_its_config_fields():
    """No hand-written copy: every ThanoRAConfig field but the seed is a --thanora_* flag with the same default."""
    import dataclasses

    from llava_thanora.methods.thanora import ThanoRAArguments
    from llava_thanora.thanora import ThanoRAConfig

    flags = {f.name: f.default for f in dataclasses.fields(ThanoRAArguments)}
    for f in dataclasses.fields(ThanoRAConfig):
        if f.name != "seed":
            assert flags[f"thanora_{f.metadata.get('flag', f.name)}"] == f.default, f.name
    assert "thanora_lambda" in flags and "thanora_penalty" in flags and "thanora_preview_batch_size" in flags
    with pytest.raises(ValueError, match="tau must be > 0"):
        ThanoRAArguments(thanora_tau=0.0)
