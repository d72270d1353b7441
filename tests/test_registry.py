"""Lazy registries: each family declares its names from its modules' source and imports a module
when one of its names is first used."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

from recpoison import attacks, defenses, detect, victims
from recpoison.errors import UnknownNameError
from recpoison.registry import Registry, declare_submodules

FAMILIES = [(victims, victims.VICTIMS), (attacks, attacks.ATTACKS), (defenses, defenses.DEFENSES), (detect, detect.DETECTORS)]


@pytest.mark.parametrize("package, registry", FAMILIES, ids=lambda x: getattr(x, "kind", ""))
def test_declared_names_are_exactly_what_the_modules_register(package, registry):
    """Importing every public module registers exactly the declared names, each by its declared module."""
    declared = dict(registry._lazy)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{package.__name__}.{info.name}")
    registered = {e.name: e.factory.__module__ for e in registry}
    assert set(declared) <= set(registered)
    for name, module in declared.items():
        assert registered[name] == module, name
    # the only names registered without a declaration are those of the family's base module (defense "none")
    extra = set(registered) - set(declared)
    assert all(registered[n] == f"{package.__name__}.base" for n in extra), extra


def test_a_run_imports_only_what_it_uses():
    """A cell with a victim and an attack that need no torch does not import torch (2.5 s), and
    the listing of names imports no component module."""
    code = (
        "import sys; from recpoison import pipeline, victims; from recpoison.pipeline import CellSpec, run_cell; "
        "names = victims.VICTIMS.names(); assert 'lightgcn' in names and 'mf' in names; "
        "assert 'recpoison.victims.lightgcn' not in sys.modules; "
        "from recpoison.testing import planted_blocks; "
        "victims.make('itemknn'); "
        "print('torch' in sys.modules, 'recpoison.victims.itemknn' in sys.modules, 'recpoison.victims.mf' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "True", "False"], res.stdout + res.stderr


def test_unknown_names_list_every_declared_name(tmp_path):
    reg = Registry("widget")
    pkg = tmp_path / "widgets_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "alpha.py").write_text(
        "from tests_registry_reg import REG\n@REG.register('a1', paper='p', summary='s')\nclass A:\n    pass\n"
        "@REG.register(\n    'a2', paper='p', summary='s')\nclass A2:\n    pass\n"
    )
    (pkg / "beta.py").write_text("from tests_registry_reg import REG\nNAME = 'b'\nclass B:\n    pass\nREG.register(NAME, paper='p', summary='s')(B)\n")
    (pkg / "_private.py").write_text("raise RuntimeError('never imported')\n")
    mod = type(sys)("tests_registry_reg")
    mod.REG = reg
    sys.modules["tests_registry_reg"] = mod
    sys.path.insert(0, str(tmp_path))
    try:
        declare_submodules(reg, "widgets_pkg", [str(pkg)])
        # beta registers a non-literal name: imported at once; alpha only declared
        assert "widgets_pkg.beta" in sys.modules and "widgets_pkg.alpha" not in sys.modules
        assert reg.names() == ["a1", "a2", "b"] and "a2" in reg
        with pytest.raises(UnknownNameError, match="valid names: a1, a2, b"):
            reg.entry("zz")
        assert "widgets_pkg.alpha" not in sys.modules
        assert reg.entry("a2").name == "a2" and "widgets_pkg.alpha" in sys.modules
        assert [e.name for e in reg] == ["a1", "a2", "b"]
    finally:
        sys.path.remove(str(tmp_path))
        for m in ("tests_registry_reg", "widgets_pkg", "widgets_pkg.alpha", "widgets_pkg.beta"):
            sys.modules.pop(m, None)
