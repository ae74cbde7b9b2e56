"""The stubs describe exactly the public surface of the extension module."""

import ast
import inspect
from pathlib import Path

import riskgate
from riskgate import _riskgate

STUB = Path(riskgate.__file__).with_name("_riskgate.pyi")


def stub_classes():
    tree = ast.parse(STUB.read_text())
    return {
        node.name: {
            item.name
            for item in node.body
            if isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
        }
        | {
            item.target.id
            for item in node.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        }
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }


def test_stub_files_ship_with_the_package():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_every_runtime_class_and_member_is_in_the_stub_and_vice_versa():
    stubs = stub_classes()
    runtime = {name for name, obj in vars(_riskgate).items() if inspect.isclass(obj)}
    assert runtime == set(stubs)
    for name, members in stubs.items():
        cls = getattr(_riskgate, name)
        public = {m for m in dir(cls) if not m.startswith("_")} - set(dir(BaseException))
        assert public == members, name
    python_level = {"AccountMetrics", "MetricsAccumulator", "MetricsResult", "trade_metrics", "RiskReport", "risk_report"}
    exported = runtime - {"_MetricsAccumulator"}
    assert set(riskgate.__all__) == exported | python_level | {"__version__"}
