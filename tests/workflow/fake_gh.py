"""A stand-in for the GitHub CLI, answering the three calls billing-reconciler-apply.yml makes.

State (JSON, path in FAKE_GH_STATE): {"pulls": {merge_sha: pr_head_sha}, "runs": {head_sha: run_id},
"artifacts": {run_id: {artifact_name: directory}}}. It prints what `--jq` would have printed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    state = json.loads(Path(os.environ["FAKE_GH_STATE"]).read_text())

    def option(name: str) -> str | None:
        return argv[argv.index(name) + 1] if name in argv else None

    if argv[:1] == ["api"]:
        path = argv[1]
        parts = path.split("/")
        if len(parts) == 6 and parts[0] == "repos" and parts[3] == "commits" and parts[5] == "pulls":
            print(state["pulls"].get(parts[4], ""))
            return 0
    if argv[:2] == ["run", "list"]:
        print(state["runs"].get(option("--commit") or "", ""))
        return 0
    if argv[:2] == ["run", "download"]:
        run_id, name, target = argv[2], option("--name"), Path(option("--dir") or ".")
        source = state["artifacts"].get(run_id, {}).get(name or "")
        if source is None:
            print(f"no artifact {name} in run {run_id}", file=sys.stderr)
            return 1
        shutil.copytree(source, target, dirs_exist_ok=True)
        return 0
    print(f"fake gh: unsupported call: gh {' '.join(argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
