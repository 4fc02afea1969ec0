"""Run the jobs of a GitHub Actions workflow file locally, the way a runner would, for tests.

Every `run:` step is executed as written (bash -e, in the job's workspace, with the workflow's,
job's and step's `env:` after `${{ }}` substitution, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
files, CI=true). `uses:` steps are emulated: checkout clones the repository shallowly,
upload/download-artifact copy files to and from a local artifact store, github-script "posts"
the comment file named by its PLAN_COMMENT env, setup-python does nothing. Steps whose name is
listed in `skip` (installing the tool: it is installed already) are not run. An unknown action
or `${{ }}` expression fails the test, so the workflow cannot drift from what the test covers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
FAKE_GH = Path(__file__).with_name("fake_gh.py")


@dataclass
class StepResult:
    name: str
    returncode: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class JobResult:
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.returncode == 0 for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.returncode != 0), None)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def log(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.returncode})\n{s.stdout}{s.stderr}" for s in self.steps)


def load_workflow(path: Path) -> dict[str, Any]:
    return YAML(typ="safe").load(path.read_text())


class Runner:
    def __init__(self, workflow: Path, *, workspace: Path, artifacts: Path, github: dict[str, Any],
                 secrets: dict[str, str], checkout: Callable[[Path], None], skip: frozenset[str] = frozenset(),
                 extra_env: dict[str, str] | None = None, fake_gh_state: Path | None = None):
        self.workflow = load_workflow(workflow)
        self.workspace, self.artifacts = workspace, artifacts
        self.github, self.secrets, self.checkout = github, secrets, checkout
        self.skip, self.extra_env = skip, extra_env or {}
        self.fake_gh_state = fake_gh_state
        self.bin = workspace.parent / f"{workspace.name}-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        gh = self.bin / "gh"
        gh.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_GH} \"$@\"\n")
        gh.chmod(0o755)

    # --- expressions -----------------------------------------------------------------------

    def _lookup(self, expression: str, steps: dict[str, Any], env: dict[str, str]) -> str:
        root, _, rest = expression.partition(".")
        contexts = {"github": self.github, "secrets": self.secrets, "steps": steps, "env": env}
        if root not in contexts or not rest:
            raise AssertionError(f"the test runner does not know the expression ${{{{ {expression} }}}}")
        node: Any = contexts[root]
        for part in rest.split("."):
            if root == "secrets" and isinstance(node, dict) and part not in node:
                return ""  # an unset secret is the empty string on GitHub too
            if not isinstance(node, dict) or part not in node:
                raise AssertionError(f"the test runner has no value for ${{{{ {expression} }}}}")
            node = node[part]
        return str(node)

    def _sub(self, value: Any, steps: dict[str, Any], env: dict[str, str]) -> Any:
        if isinstance(value, str):
            return _EXPR.sub(lambda m: self._lookup(m.group(1), steps, env), value)
        if isinstance(value, dict):
            return {k: self._sub(v, steps, env) for k, v in value.items()}
        return value

    # --- running -----------------------------------------------------------------------------

    def run_job(self, job_id: str) -> JobResult:
        job = self.workflow["jobs"][job_id]
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        self.workspace.mkdir(parents=True)
        summary = self.workspace.parent / f"{self.workspace.name}-summary.md"
        summary.write_text("")
        result = JobResult()
        steps_ctx: dict[str, Any] = {}
        base_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")}
        base_env.update({
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_REPOSITORY": str(self.github.get("repository", "")),
            "GITHUB_SHA": str(self.github.get("sha", "")), "GITHUB_EVENT_NAME": str(self.github.get("event_name", "")),
            "PATH": f"{self.bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.extra_env,
        })
        if self.fake_gh_state is not None:
            base_env["FAKE_GH_STATE"] = str(self.fake_gh_state)
        env = dict(base_env)
        for scope in (self.workflow.get("env") or {}, job.get("env") or {}):
            env.update({k: str(self._sub(v, steps_ctx, env)) for k, v in scope.items()})
        for index, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index + 1}"
            if result.failed is not None and step.get("if") not in ("always()", "failure()"):
                break
            if step.get("if") not in (None, "always()", "success()"):
                raise AssertionError(f"the test runner cannot evaluate `if: {step['if']}` ({name})")
            if name in self.skip:
                continue
            step_env = dict(env)
            step_env.update({k: str(self._sub(v, steps_ctx, step_env)) for k, v in (step.get("env") or {}).items()})
            if "uses" in step:
                outcome = self._uses(step["uses"], self._sub(step.get("with") or {}, steps_ctx, step_env), step_env,
                                     result)
                result.steps.append(StepResult(name, outcome))
                continue
            output = self.workspace.parent / f"{self.workspace.name}-output-{index}"
            output.write_text("")
            step_env["GITHUB_OUTPUT"] = str(output)
            script = self._sub(step["run"], steps_ctx, step_env)
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-c", script], cwd=self.workspace,
                                  env=step_env, capture_output=True, text=True, timeout=900)
            result.steps.append(StepResult(name, proc.returncode, proc.stdout, proc.stderr))
            if "id" in step:
                outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
                steps_ctx[step["id"]] = {"outputs": outputs}
                result.outputs[step["id"]] = outputs
        result.summary = summary.read_text()
        return result

    def _uses(self, action: str, inputs: dict[str, Any], env: dict[str, str], result: JobResult) -> int:
        name = action.split("@", 1)[0]
        if name == "actions/checkout":
            shutil.rmtree(self.workspace)
            self.checkout(self.workspace)
            return 0
        if name == "actions/setup-python":
            return 0
        if name == "actions/upload-artifact":
            target = self.artifacts / inputs["name"]
            if target.exists():
                shutil.rmtree(target)
            found = [p.strip() for p in str(inputs["path"]).splitlines() if p.strip()]
            present = [p for p in found if (self.workspace / p).exists()]
            if not present:
                return 0 if inputs.get("if-no-files-found") == "ignore" else 1
            target.mkdir(parents=True)
            for p in present:
                shutil.copy2(self.workspace / p, target / Path(p).name)
            return 0
        if name == "actions/download-artifact":
            source = self.artifacts / inputs["name"]
            if not source.exists():
                return 1
            shutil.copytree(source, self.workspace / inputs.get("path", "."), dirs_exist_ok=True)
            return 0
        if name == "actions/github-script":
            assert "createComment" in inputs["script"] and "updateComment" in inputs["script"]
            result.comments.append((self.workspace / env["PLAN_COMMENT"]).read_text())
            return 0
        raise AssertionError(f"the test runner does not emulate {action}")
