"""Helpers for the config tests: config trees written under tmp_path, an importable helper module."""
import sys
import textwrap

import pytest

HELPER_MODULE = "detzoo_cfgtest_helpers"

HELPER_SOURCE = '''
"""Small importable classes used as component types by the config tests."""


class Leaf:
    def __init__(self, size, scale=1.0):
        self.size, self.scale = size, scale


class Message:  # same bare name as email.message.Message: the dump must alias one of them
    def __init__(self, text=""):
        self.text = text


class Outer:
    class Inner:
        pass


def make_pair(a, b=2):
    return (a, b)
'''


@pytest.fixture
def write_tree(tmp_path):
    """write_tree({"rel/path.py": source, ...}) -> root; sources are dedented."""

    def write(files, root=None):
        root = (root or tmp_path).resolve()
        for rel, source in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source), encoding="utf-8")
        return root

    return write


@pytest.fixture(scope="session")
def helpers(tmp_path_factory):
    """The helper module, importable by absolute import from config files."""
    folder = tmp_path_factory.mktemp("helpers")
    (folder / f"{HELPER_MODULE}.py").write_text(HELPER_SOURCE, encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        yield __import__(HELPER_MODULE)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(HELPER_MODULE, None)
