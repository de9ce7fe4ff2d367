"""The docs keep up with the code: every hook and every built-in backend is documented and tested."""

from __future__ import annotations

from pathlib import Path

from wukong.plugins import hookspecs
from wukong.plugins.registry import backend_registry

ROOT = Path(__file__).parent.parent
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("wukong_"))


def test_every_hook_has_a_section_in_the_plugin_docs():
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert HOOKS
    for hook in HOOKS:
        assert f"### `{hook}(" in text, hook


def test_every_hook_is_used_by_the_tests_or_builtins():
    sources = "".join(
        path.read_text() for path in (ROOT / "tests").rglob("*.py") if path.name != "test_docs.py"
    )
    sources += (ROOT / "wukong" / "plugins" / "builtin.py").read_text()
    for hook in HOOKS:
        assert f"def {hook}(" in sources, hook


def test_every_builtin_backend_has_a_page():
    for kind in ("compute", "storage"):
        registry = backend_registry(kind)
        builtins = [name for name in registry.names() if registry.get(name).plugin == "wukong.builtin"]
        assert builtins, kind
        for name in builtins:
            assert (ROOT / "docs" / "backends" / f"{name}.md").is_file(), name


def test_readme_names_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "wukong demo" in text and "python -m pytest" in text
