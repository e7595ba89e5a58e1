"""Suite-wide: the header names the CPU and the precision `train.precision: auto` picks,
so every CI log says which kind of machine its timings and thresholds came from."""

import torch

from keypointgan.core.runtime import cpu_kind, cpu_model_name, resolve_precision


def _line() -> str:
    auto = resolve_precision("auto", torch.device("cpu"))
    return (f"keypointgan: CPU {cpu_model_name()} ({cpu_kind()}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; train.precision=auto -> {auto} on this CPU")


_AT_START: list[str] = []


def pytest_configure(config):
    _AT_START.append(_line())  # before any test changes torch's thread count


def pytest_report_header(config):
    return [_AT_START[0] if _AT_START else _line()]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Also at the end: ``pytest -q`` (the README's command) prints no header."""
    terminalreporter.write_line(_AT_START[0] if _AT_START else _line())
