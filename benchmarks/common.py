"""Small helpers shared by the benchmark modules: machine description, atomic JSON, list options."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Sequence, Tuple, Union

Size = Union[int, str]  # a number of labeled sentences, or "all"

VERSIONED_PACKAGES = ("spacy", "thinc", "numpy", "torch", "spacy-transformers", "transformers", "spacy-compact-ner")


def now_iso() -> str:
    """The current UTC time, ISO 8601, seconds."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def package_versions() -> dict:
    """Installed versions of the packages that matter for the numbers ("not installed" if absent)."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_info() -> dict:
    """Where a number was measured: CPU, core count, memory, OS, Python and package versions."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python": sys.version.split()[0],
        "versions": package_versions(),
    }


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file, then rename), making parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf8")
    os.replace(tmp, path)


def result_files(metrics_dir: Path, datasets: Sequence[str] = ()) -> Iterator[Tuple[Path, dict]]:
    """Each result file ``metrics_dir/<dataset>/n<size>-s<seed>/<system>.json`` (of ``datasets``; all
    when empty) with its contents, in path order: what the backfill commands update in place."""
    for path in sorted(Path(metrics_dir).glob("*/n*-s*/*.json")):
        if not datasets or path.parent.parent.name in datasets:
            yield path, json.loads(path.read_text(encoding="utf8"))


def write_text(path: Path, text: str) -> None:
    """Write text atomically, making parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf8")
    os.replace(tmp, path)


def parse_size(value: Union[str, int]) -> Size:
    """``"all"`` (every training sentence labeled) or a positive number of labeled sentences."""
    text = str(value).strip().lower()
    if text == "all":
        return "all"
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"a size must be a positive integer or 'all', got {value!r}") from None
    if number <= 0:
        raise ValueError(f"a size must be a positive integer or 'all', got {value!r}")
    return number


def size_key(size: Size) -> tuple:
    """Sort key: numbers ascending, then "all"."""
    return (1, 0) if size == "all" else (0, int(size))


def size_label(size: Size) -> str:
    return "all" if size == "all" else str(int(size))


def split_list(values: Union[str, Iterable[str], None]) -> List[str]:
    """Items of comma-separated strings (repeatable options may also be given several times)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    items: List[str] = []
    for value in values:
        items.extend(part.strip() for part in str(value).split(",") if part.strip())
    return items


def parse_sizes(values: Union[str, Sequence[str], None]) -> List[Size]:
    sizes: List[Size] = []
    for item in split_list(values):
        size = parse_size(item)
        if size not in sizes:
            sizes.append(size)
    return sizes


def parse_ints(values: Union[str, Sequence[str], None], *, name: str, minimum: int = 0) -> List[int]:
    numbers: List[int] = []
    for item in split_list(values):
        try:
            number = int(item)
        except ValueError:
            raise ValueError(f"{name}: expected integers, got {item!r}") from None
        if number < minimum:
            raise ValueError(f"{name}: values must be >= {minimum}, got {number}")
        if number not in numbers:
            numbers.append(number)
    return numbers


def parse_assignments(values: Union[str, Sequence[str], None], *, name: str) -> dict:
    """``KEY=VALUE`` items (repeatable) as a dict, e.g. config overrides or NAME=PATH pairs."""
    result = {}
    for item in [values] if isinstance(values, str) else (values or []):
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{name}: expected KEY=VALUE, got {item!r}")
        result[key.strip()] = value.strip()
    return result


def human_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"
