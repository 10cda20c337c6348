"Every exported function and class has a docstring (the notebooks are the documentation)."
import importlib, inspect, pkgutil
import vitron_nb

def test_every_exported_callable_has_a_docstring():
    missing = []
    for info in pkgutil.iter_modules(vitron_nb.__path__):
        if info.name.startswith("_"): continue
        module = importlib.import_module(f"vitron_nb.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, "__module__", None) != module.__name__: continue
            doc = inspect.getdoc(obj) or ""
            if not doc or doc.startswith(f"{name}("):          # a dataclass's generated signature is not documentation
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"exported without a docstring: {missing}"
