"""Re-score the saved answers of a Python-docs report with today's answer attribution.

    .venv/bin/python -m benchmarks.python_docs.rescore_attribution \\
        benchmarks/reports/python-docs-fast-<UTC>.json --home /tmp/hf-ans --port-base 29500

Answers through a CPU model take minutes each; a report already holds them. For every saved
answer that was given (not refused, no error) this rebuilds the passages the gateway gives for
that question (the gateway's own retrieval step, on the running stack under ``--home`` whose
fast-set index the report used) and runs the gateway's cleaning and attribution on the saved
text: share of answers citing ≥1 passage before (the model's ``[n]`` markers only) and after
(attribution), and the share of sentences no passage supports. The retrieval is today's, so a
passage set may differ from the one the model saw when the report was written.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.python_docs.__main__ import stack_env
from benchmarks.python_docs.product import PRODUCT_ARMS
from benchmarks.python_docs.questions import load_questions
from benchmarks.python_docs.runner import fast_arm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port-base", type=int, required=True)
    args = parser.parse_args()
    os.environ.update(stack_env(args.home, args.port_base))
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    from gateway.api.routes.query import RetrievalParams, options_for
    from gateway.container import build_components
    from gateway.query.answering import retrieve_step
    from gateway.query.attribution import attribute, clean_answer
    from gateway.query.clock import StageClock
    from gateway.query.prompt import declined
    from gateway.query.records import Ports
    from gateway.security.keys import Principal
    from gateway.settings import load_settings

    report = json.loads(args.report.read_text(encoding="utf-8"))
    components = build_components(load_settings())
    components.warm_up()
    current = components.registry.current()
    ports = Ports(
        components.store, current.embedder, current.router, components.redactor, current.reranker
    )
    group = fast_arm(PRODUCT_ARMS["product"], bool(report.get("fast"))).group
    reader = Principal(name="rescore", groups=(group,), roles=frozenset({"query"}))
    questions = {q.id: q for q in load_questions()}
    for model, arm in report.get("answers", {}).items():
        rows: list[dict[str, Any]] = []
        for r in arm["records"]:
            if r["refused"] or r["error"]:
                continue
            q = questions[r["id"]]
            options = options_for(components, RetrievalParams(), q.question)
            _, retrieval = retrieve_step(
                q.question, reader, ports, options, Counter(), StageClock()
            )
            text = clean_answer(r["answer"].strip())
            if retrieval.status != "ok" or declined(text):
                rows.append({"id": r["id"], "given": False, "before": r["cited"] > 0})
                continue
            started = time.perf_counter()
            result = attribute(text, retrieval.context, ports.embedder)
            rows.append(
                {
                    "id": r["id"],
                    "given": True,
                    "answerable": r["answerable"],
                    "before": r["cited"] > 0,
                    "after": bool(result.cited),
                    "sentences": len(result.sentences),
                    "unsupported": [
                        (s.text, s.missing) for s in result.sentences if not s.supported
                    ],
                    "ms": (time.perf_counter() - started) * 1000,
                }
            )
        given = [x for x in rows if x["given"]]
        sentences = sum(x["sentences"] for x in given)
        unsupported = sum(len(x["unsupported"]) for x in given)
        print(
            f"{model}: saved answers {len(rows)}, declined or empty after cleaning "
            f"{len(rows) - len(given)}; "
            f"citing ≥1 passage: markers only {sum(x['before'] for x in rows)}/{len(rows)}, "
            f"attribution {sum(x['after'] for x in given)}/{len(given)}; unsupported sentences "
            f"{unsupported}/{sentences} (on answerable questions "
            f"{sum(len(x['unsupported']) for x in given if x['answerable'])}); attribution ms "
            f"max {max((x['ms'] for x in given), default=0):.0f}"
        )
        for x in given:
            for sentence, missing in x["unsupported"]:
                print(f"    {x['id']}: {sentence[:100]!r} missing {list(missing)}")
    components.close()


if __name__ == "__main__":
    main()
