#!/usr/bin/env python3
"""Summary of a kosoku (Autobahn TestSuite) report: counts by result, the cases that are not OK,
and the exit status: 0 only when every case is OK, or INFORMATIONAL where the case is
informational by definition (7.1.6, 7.13.1, 7.13.2 always report INFORMATIONAL).

    scripts/autobahn_summary.py target/autobahn/index.json              # summary, exit status
    scripts/autobahn_summary.py target/autobahn/index.json --markdown   # the table of docs/CONFORMANCE.md
"""
import json
import sys
from collections import Counter

INFORMATIONAL_BY_DEFINITION = {"7.1.6", "7.13.1", "7.13.2"}
ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]


def case_key(case_id):
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def verdict(case_id, r):
    """The worse of the case's behaviour and its close behaviour."""
    worst = max((r.get("behavior", "ERROR"), r.get("behaviorClose", "ERROR")),
                key=lambda b: ORDER.index(b) if b in ORDER else len(ORDER))
    return worst


def main():
    path = sys.argv[1]
    markdown = "--markdown" in sys.argv[2:]
    index = json.load(open(path))
    results = {}
    for agent in index.values():
        for case_id, r in agent.items():
            results[case_id] = verdict(case_id, r)
    counts = Counter(results.values())
    bad = sorted((c for c, v in results.items()
                  if not (v == "OK" or (v == "INFORMATIONAL" and c in INFORMATIONAL_BY_DEFINITION))),
                 key=case_key)
    by_section = {}
    for c, v in results.items():
        by_section.setdefault(c.split(".")[0], Counter())[v] += 1
    if markdown:
        cols = [o for o in ORDER if counts[o]]
        print("| section | cases | " + " | ".join(cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        for s in sorted(by_section, key=int):
            n = sum(by_section[s].values())
            print(f"| {s} | {n} | " + " | ".join(str(by_section[s][o]) for o in cols) + " |")
        total = sum(counts.values())
        print(f"| all | {total} | " + " | ".join(f"**{counts[o]}**" for o in cols) + " |")
    else:
        total = sum(counts.values())
        print(f"autobahn: {total} cases: " + ", ".join(f"{counts[o]} {o}" for o in ORDER if counts[o]))
        for c in bad:
            print(f"  {c}: {results[c]}")
    if not markdown:
        if bad:
            print(f"autobahn: {len(bad)} case(s) not OK", file=sys.stderr)
            sys.exit(1)
        print("autobahn: every case OK")


if __name__ == "__main__":
    main()
