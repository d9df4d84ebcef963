"""The curated case dataset (cases.jsonl, its card README.md) and the script that builds it
(`python -m attnlens.data.build_cases`). The cases are read with `attnlens.evaluation.cases`."""
