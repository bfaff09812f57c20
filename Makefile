# Shortcuts for those who prefer make; ./dev does the work (and needs no make).
.PHONY: run test bench clean
run:
	./dev run
test:
	./dev test
bench:
	./dev bench
clean:
	rm -rf .venv web/node_modules .mypy_cache .pytest_cache .ruff_cache
