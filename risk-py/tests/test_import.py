import riskgate


def test_public_names_and_exception_hierarchy():
    assert isinstance(riskgate.__version__, str)
    for cls in (riskgate.ConfigError, riskgate.InvalidInput, riskgate.EventError):
        assert issubclass(cls, riskgate.RiskgateError)
    assert issubclass(riskgate.RiskgateError, Exception)
