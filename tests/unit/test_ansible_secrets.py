"""Every Ansible task that reads, writes or templates a secret hides it: `no_log: true` (nothing in
the output, the callback plugins or a failure message) and `diff: false` (no --diff of the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROLES = Path(__file__).resolve().parents[2] / "ansible" / "roles"
# Where a secret shows up in a task: a file under secrets/, an env file, or slurp (returns content).
SECRET_MARKS = ("/secrets/", ".env", "secret")


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found.extend(_tasks(task.get(key, [])))
    return found


def _touches_a_secret(task: dict[str, Any]) -> bool:
    for module, args in task.items():
        if module.endswith(".slurp"):
            return True
        if module.endswith((".copy", ".template")) and isinstance(args, dict):
            paths = f"{args.get('src', '')} {args.get('dest', '')}"
            if any(mark in paths for mark in SECRET_MARKS):
                return True
    return False


def secret_tasks() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.relative_to(ROLES)}: {task.get('name')}", task)
        for path in sorted(ROLES.glob("*/tasks/*.yml"))
        for task in _tasks(yaml.safe_load(path.read_text()))
        if _touches_a_secret(task)
    ]


def test_the_scan_finds_the_known_secret_tasks() -> None:
    names = [name for name, _ in secret_tasks()]
    assert any("admin API key" in n for n in names)
    assert any("Weaviate API key" in n for n in names)
    assert sum("environment" in n for n in names) >= 2, names


def test_every_task_that_touches_a_secret_hides_it() -> None:
    leaky = [
        name
        for name, task in secret_tasks()
        if task.get("no_log") is not True or task.get("diff") is not False
    ]
    assert not leaky
