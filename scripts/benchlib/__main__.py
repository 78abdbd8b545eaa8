"""python3 -m benchlib collector|sessionizer|aggregator|queries|overload [options]"""
import importlib
import sys

BENCHMARKS = ("collector", "sessionizer", "aggregator", "queries", "overload")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print(f"usage: python3 -m benchlib {'|'.join(BENCHMARKS)} [options] (--help for each)", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchlib.{sys.argv[1]}")
    return module.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
