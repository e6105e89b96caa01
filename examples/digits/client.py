"""Send the digits example real digits: predictions, or predictions and feedback.

    python examples/digits/client.py predict 200     # accuracy, and which model answered
    python examples/digits/client.py feedback 300    # ... and label each answer

Each query is one digit from scikit-learn's ``load_digits`` sent to
``POST /digits/predict``; with ``feedback``, its true label then goes to
``POST /digits/feedback`` by the query id the answer carried (not for a default
answer: no model made it, so there is nothing to score), and the selection weights
the frontend answers with are printed before and after. During a Shadow rollout
these labels are what the candidate is judged on (``clipper status`` shows it). Standard library
only (plus scikit-learn for the data), so it is easy to read as an API example.
"""

from __future__ import annotations

import argparse
import collections
import json
import urllib.request
from typing import Any


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
        return loaded


def show(weights: dict[str, float]) -> str:
    return "  ".join(f"{model}={weight:.3f}" for model, weight in sorted(weights.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["predict", "feedback"])
    parser.add_argument("count", type=int, nargs="?", default=100)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--app", default="digits")
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    digits = load_digits()
    right, answered_by = 0, collections.Counter[str]()
    weights: dict[str, float] = {}
    for i in range(args.count):
        row, label = digits.data[i % len(digits.data)], int(digits.target[i % len(digits.data)])
        answer = post(f"{args.url}/{args.app}/predict", {"input": row.tolist()})
        right += answer["output"] == label
        answered_by[",".join(answer["models"]) or "default"] += 1
        if args.what == "feedback" and not answer["default"]:  # a default has no model to score
            learned = post(
                f"{args.url}/{args.app}/feedback", {"query_id": answer["query_id"], "label": label}
            )
            if not weights:
                print(f"weights after the first label: {show(learned['weights'])}")
            weights = learned["weights"]
    print(f"{args.count} queries, {right / args.count:.1%} right; answered by: {dict(answered_by)}")
    if weights:
        print(f"weights after {args.count} labels:    {show(weights)}")


if __name__ == "__main__":
    main()
