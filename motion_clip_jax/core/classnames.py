"""Class-name lists of HMDB-51, UCF-101 and Kinetics-400, vendored as text files.

`load_classnames('ucf101')` gives the readable names fed to CLIP's text encoder ("apply eye
makeup"); `raw=True` gives the dataset's own folder names ("ApplyEyeMakeup"). List index = label.
Sources and licences of the lists: classnames/SOURCES.md. No JAX / TensorFlow here.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import re

# dataset -> (file under classnames/, expected number of classes)
_DATASETS = {
    "hmdb51": ("hmdb51.txt", 51),
    "ucf101": ("ucf101.txt", 101),
    "kinetics400": ("kinetics400.txt", 400),
}

# Hand-made readable names, where splitting the CamelCase would misread the class.
# "YoYo" is the toy (one word); "yo yo" would read as a greeting.
UCF101_READABLE_EXCEPTIONS = {"YoYo": "yoyo"}

# A word of a CamelCase name: an acronym followed by a capitalised word ("TV" in "TVRemote"), a
# capitalised or lower-case word, a trailing acronym, or a run of digits.
_CAMEL_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_CAMEL_NAME = re.compile(r"[A-Za-z0-9_\- ]*[A-Za-z0-9][A-Za-z0-9_\- ]*")


def read_label_file(path: str | os.PathLike) -> list[str]:
    """Class names from a text file, one per line; blank lines and `#` comment lines are skipped.

    Raises ValueError naming the file if it holds no names or repeats one.
    """
    names, first_line = [], {}
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            name = line.strip()
            if not name or name.startswith("#"):
                continue
            if name in first_line:
                raise ValueError(
                    f"Label file {os.fspath(path)}: class {name!r} on line {line_number} repeats "
                    f"line {first_line[name]}"
                )
            first_line[name] = line_number
            names.append(name)
    if not names:
        raise ValueError(f"Label file {os.fspath(path)} holds no class names")
    return names


def ucf101_readable(raw_name: str) -> str:
    """UCF-101 folder name -> readable lower-case words: "ApplyEyeMakeup" -> "apply eye makeup".

    Splits at lower->upper case changes, before the last capital of an acronym ("TVRemote" ->
    "tv remote") and around digits; `_`, `-` and spaces also separate words. Exceptions:
    UCF101_READABLE_EXCEPTIONS.
    """
    if not isinstance(raw_name, str) or not _CAMEL_NAME.fullmatch(raw_name):
        raise ValueError(
            f"Not a CamelCase class name (ASCII letters, digits, '_', '-', ' '): {raw_name!r}"
        )
    if raw_name in UCF101_READABLE_EXCEPTIONS:
        return UCF101_READABLE_EXCEPTIONS[raw_name]
    return " ".join(word.lower() for word in _CAMEL_WORD.findall(raw_name))


@functools.cache
def _vendored(dataset: str) -> tuple[str, ...]:
    filename, expected = _DATASETS[dataset]
    resource = importlib.resources.files(__package__) / "classnames" / filename
    with importlib.resources.as_file(resource) as path:
        names = read_label_file(path)
    if len(names) != expected:
        raise ValueError(f"{resource}: expected {expected} {dataset} classes, found {len(names)}")
    return tuple(names)


def load_classnames(dataset: str, raw: bool = False) -> list[str]:
    """The class names of 'hmdb51' | 'ucf101' | 'kinetics400', index = label.

    raw=False: readable names for prompts ("brush hair", "apply eye makeup"); raw=True: folder
    names ("brush_hair", "ApplyEyeMakeup"). Kinetics-400's official names serve as both.
    """
    key = dataset.lower().replace("-", "").replace("_", "")
    if key not in _DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; known: {', '.join(_DATASETS)}")
    names = list(_vendored(key))
    if raw or key == "kinetics400":
        return names
    if key == "hmdb51":
        return [name.replace("_", " ") for name in names]
    return [ucf101_readable(name) for name in names]
