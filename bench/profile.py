"""Where a py-spy profile's time went: the functions with the most samples, inclusive and self.

    python -m bench.profile bench/profiles/throughput-n200-course.speedscope.json [--top 25]

Reads the speedscope files `bench.throughput --profile` writes (all threads together). Inclusive:
a function on the stack; self: the function at the top. A function counts once per sample however
often it recurs. `--match` adds rows for functions whose name or file contains a given text.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

# What the levers are about: time inside the workflow sandbox, the per-payload entry to
# it, the codec, and the course's own code, so the before and after profiles answer the same rows.
WATCH = {
    "sandbox: a workflow activation": ("_runner.py", ".activate"),
    "sandbox: serialization context (once per payload)": ("_runner.py", ".get_serialization_context"),
    "payload codec (AES-GCM)": ("codec.py", "EncryptionCodec."),
    "pydantic JSON to payload": ("pydantic.py", ".to_payload"),
    "pydantic JSON from payload": ("pydantic.py", ".from_payload"),
    "TreatmentCourseWorkflow.record": ("treatment_course.py", ".record"),
    "TreatmentCourseWorkflow._publish": ("treatment_course.py", "._publish"),
    "course view (the whole CourseView)": ("view.py", ":view"),
    "event store append": ("event_store.py", ".append"),
}


def summarize(path: Path, top: int, match: list[str]) -> list[str]:
    document = json.loads(path.read_text())
    frames = document["shared"]["frames"]
    names = [f"{Path(f.get('file', '?')).name}:{f['name']}" for f in frames]
    inclusive: Counter[int] = Counter()
    own: Counter[int] = Counter()
    total = 0.0
    for profile in document["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            for index in set(stack):
                inclusive[index] += weight
            if stack:
                own[stack[-1]] += weight
    lines = [f"{path.name}: {total:.1f} s sampled"]
    lines.append("watched (inclusive):")
    for label, (file, function) in WATCH.items():
        hit = _share(inclusive, names, _in(file, function))
        lines.append(f"  {100 * hit / total:5.1f} %  {label}")
    for needle in match:
        lines.append(f"  {100 * _share(inclusive, names, needle.__contains__) / total:5.1f} %  {needle}")
    lines.append("top inclusive:")
    lines += [f"  {100 * n / total:5.1f} %  {names[i]}" for i, n in inclusive.most_common(top)]
    lines.append("top self:")
    lines += [f"  {100 * n / total:5.1f} %  {names[i]}" for i, n in own.most_common(top)]
    return lines


def _in(file: str, function: str) -> Callable[[str], bool]:
    return lambda name: name.startswith(file + ":") and function in name


def _share(inclusive: Counter[int], names: list[str], matches: Callable[[str], bool]) -> float:
    """The largest inclusive weight among matching frames (a frame and its callers overlap, so
    they are not summed)."""
    return max((n for i, n in inclusive.items() if matches(names[i])), default=0)


def main() -> None:
    parsed = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parsed.add_argument("profiles", nargs="+", type=Path)
    parsed.add_argument("--top", type=int, default=25)
    parsed.add_argument("--match", action="append", default=[], help="also show this function or file")
    args = parsed.parse_args()
    for path in args.profiles:
        print("\n".join(summarize(path, args.top, args.match)))


if __name__ == "__main__":
    main()
