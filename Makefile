# Developer shortcuts; every target is a plain command you can also type.
.PHONY: help check test slow bench golden
help:      ## list the targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*## /\t/'
check:     ## lint and type-check
	ruff check . && python tools/typecheck.py
test:      ## the default test run (what CI runs)
	python -m pytest -q
slow:      ## the slow tests (long fuzzing, exhaustive enumerations)
	python -m pytest -q -m slow
golden:    ## rewrite golden files after an intended change (review the diff!)
	python -m pytest -q tests/dsl --update-golden
bench:     ## benchmarks; results go to benchmarks/RESULTS.md by hand
	python benchmarks/check_speed.py
