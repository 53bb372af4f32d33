"""The benchmark: accuracy of teacher, students and baselines over a grid of labeled-data sizes and
seeds (resumable cell by cell), speed and size of the trained pipelines, and the report that turns
whatever results exist into ``metrics/benchmark.{json,md}`` and plots.

- ``accuracy``: the grid runner. One JSON per (dataset, size, seed, system) under
  ``metrics/benchmark/<dataset>/n<size>-s<seed>/<system>.json``; models under ``training/benchmark/``.
- ``speed``: words/s (1 thread and all cores), parameters, size on disk and as a wheel, peak RSS,
  and scaling with input size and doc length; each system measured in its own subprocess
  (``worker.py``, which needs only spaCy).
- ``report``: aggregates the cells (mean ± std over seeds), checks the targets against the measured
  numbers, writes JSON, markdown and PNG plots.
- ``schema``: validators of the JSON files (no dependency), used by the tests and the report.

Nothing heavy is imported here, so ``python -m benchmarks`` starts quickly.
"""

SYSTEMS = ("teacher", "student_full", "student_kd", "student_gold", "spacy_ner", "spacy_ner_vectors")

SYSTEM_LABELS = {
    "teacher": "teacher (MiniLM-L6 + compact_ner)",
    "student_full": "student: gold + KD + pseudo-labels",
    "student_kd": "student: gold + KD",
    "student_gold": "student: gold only",
    "spacy_ner": "spaCy default CNN ner",
    "spacy_ner_vectors": "spaCy ner + en_core_web_md vectors (accuracy config)",
    "en_core_web_md": "en_core_web_md ner",
}

# A student variant of configs/student_variants.json benchmarked as an extra system: the full student's
# settings plus the variant's overrides, e.g. ``--systems student_full,variant.pl_half``.
VARIANT_PREFIX = "variant."
# A teacher variant of configs/teacher_variants.json: the cell's teacher settings plus the variant's
# overrides, trained on the labeled sample beside the teacher (which the students keep learning from),
# e.g. ``--systems teacher,teacher_variant.features``: a dataset's teacher settings chosen on its dev.
TEACHER_VARIANT_PREFIX = "teacher_variant."


def variant_of(system: str) -> str:
    """The student variant a system names ("" for the built-in systems)."""
    return system[len(VARIANT_PREFIX) :] if system.startswith(VARIANT_PREFIX) else ""


def teacher_variant_of(system: str) -> str:
    """The teacher variant a system names ("" for the others)."""
    return system[len(TEACHER_VARIANT_PREFIX) :] if system.startswith(TEACHER_VARIANT_PREFIX) else ""


def system_label(system: str) -> str:
    """How tables name a system."""
    variant = variant_of(system)
    if variant:
        return f"student variant {variant}"
    teacher_variant = teacher_variant_of(system)
    if teacher_variant:
        return f"teacher variant {teacher_variant}"
    return SYSTEM_LABELS.get(system, system)


__all__ = [
    "SYSTEMS",
    "SYSTEM_LABELS",
    "TEACHER_VARIANT_PREFIX",
    "VARIANT_PREFIX",
    "system_label",
    "teacher_variant_of",
    "variant_of",
]
